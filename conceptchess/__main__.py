from conceptchess.cli.main import app

app()
