"""Positions from recorded games: stream ``.pgn``, ``.pgn.gz`` or ``.pgn.zst`` files into position records.

Files are read as a stream (constant memory on multi-GB Lichess dumps): the compressed bytes pass
through a hashing counter (progress and the manifest's sha256 in the same pass), a decompressor and
a UTF-8 text reader, and python-chess's PGN parser drives a visitor that builds records while it
replays each game, so no ``chess.pgn.Game`` tree is built. Games rejected by their headers skip their
movetext without parsing it.

Which positions of a kept game become records: plies ``t`` ≥ ``skip_plies``, every ``every``-th one
from a per-game offset in ``[0, every)`` drawn from ``(seed, game)`` (so an even ``every`` does not keep
one side to move only), including the final position (``move`` null). ``dedup`` drops a position whose
board, side to move, castling rights and (legal) en-passant square were already written;
``max_positions`` stops reading once reached. The order is: skip → every → dedup → max. (``dedup``
is the one thing that grows with the input: a 64-bit hash per distinct position, ~70 bytes each.)

``clock`` is the side to move's time left after its previous move (its ``[%clk]`` comment), the
TimeControl base time at plies 0 and 1 of a game with clock comments, and null without them.

Files are read one after another (``max_positions`` fills from the first files first), or with
``interleave`` in turn, one game from each file while it lasts. Game numbers count every game in the
input, in the order read, filtered or not, so ids (``g{game}-p{ply}``) stay the same whatever the
filters. The manifest counts games read, kept (passed the filters and read without errors) and skipped
per reason: the filters' (``rating``, ``time_control``, ``variant``, ``chess960``) and the errors'
(``illegal_move``: one python-chess records in ``game.errors``; ``not_pgn``: text python-chess passes
over silently — words between the moves, a "game" with neither tag pairs nor moves; ``pgn_error``: any
other python-chess records, e.g. a malformed FEN tag). A game with an error gives no position at all.

A file that is not PGN (every game in it has errors, bytes that are not UTF-8) or whose compression is
corrupt or truncated is a :class:`ConceptChessError` naming the file.
:func:`open_text` reads any other text file (a Lichess CSV…) through the same plain / gzip / zstd
readers, with the same checks.

>>> reader = PgnPositions(["games.pgn.zst"], GameFilter(min_rating=1500), Sampling(every=4))  # doctest: +SKIP
>>> for record in reader:                                                                    # doctest: +SKIP
...     ...
>>> reader.summary()["games_read"]                                                           # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import chess
import chess.pgn
import chess.variant
import numpy as np

from conceptchess.datasets import HUMAN_GAMES, DatasetWriter, position_record
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_of, software_versions

SPEEDS = ("ultrabullet", "bullet", "blitz", "rapid", "classical", "correspondence")
_SPEED_LIMITS = ((30, "ultrabullet"), (180, "bullet"), (480, "blitz"), (1500, "rapid"))
_TC_REGEX = re.compile(r"(\d+)\+(\d+)")
_CLK_REGEX = re.compile(r"\[%clk\s+(\d+):(\d\d?):(\d\d?(?:\.\d+)?)\]")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 17


# -- headers ------------------------------------------------------------------------------------------
def speed_class(time_control: str | None) -> str | None:
    """Lichess speed class of a ``TimeControl`` header: estimated duration base + 40 × increment.

    >>> speed_class("60+0"), speed_class("180+2"), speed_class("600+5"), speed_class("-")
    ('bullet', 'blitz', 'rapid', 'correspondence')
    """
    if time_control is None:
        return None
    tc = time_control.strip()
    if tc == "-":
        return "correspondence"
    m = _TC_REGEX.fullmatch(tc)
    if not m:
        return None
    estimate = int(m.group(1)) + 40 * int(m.group(2))
    for limit, name in _SPEED_LIMITS:
        if estimate < limit:
            return name
    return "classical"


def parse_clock(comment: str) -> float | int | None:
    """Seconds in a ``[%clk h:mm:ss]`` comment (int when whole), or None.

    >>> parse_clock("[%clk 0:01:05]"), parse_clock("[%eval 0.3] [%clk 1:00:00.5]"), parse_clock("good")
    (65, 3600.5, None)
    """
    m = _CLK_REGEX.search(comment)
    if not m:
        return None
    seconds = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return int(seconds) if seconds.is_integer() else seconds


def _elo(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class GameFilter:
    """Which games to keep, judged from their headers.

    ``min_rating``/``max_rating``: both players' Elo within range (a game without both ratings fails any
    range). ``time_controls``: Lichess speed classes (:data:`SPEEDS`) and/or raw ``TimeControl`` strings;
    a game matching any of them is kept. Non-standard variants and Chess960 are always skipped.
    """

    min_rating: int | None = None
    max_rating: int | None = None
    time_controls: tuple[str, ...] = ()

    def __post_init__(self):
        if self.min_rating is not None and self.max_rating is not None and self.min_rating > self.max_rating:
            raise ArgumentError(f"{{min_rating}} {self.min_rating} is above {{max_rating}} {self.max_rating}",
                                min_rating="min_rating", max_rating="max_rating")
        for tc in self.time_controls:
            if tc.lower() not in SPEEDS and not re.fullmatch(r"[-+*/:0-9]+", tc):
                raise ConceptChessError(f"unknown time control {tc!r}: use {', '.join(SPEEDS)} or a TimeControl string like 180+2")

    def reject(self, headers: chess.pgn.Headers) -> str | None:
        """The reason a game is skipped (a key of the manifest's ``games_skipped``), or None."""
        variant = headers.get("Variant")
        if variant is not None:
            if headers.is_chess960():
                return "chess960"
            try:
                if headers.is_wild() or chess.variant.find_variant(variant) is not chess.Board:
                    return "variant"
            except ValueError:
                return "variant"
        if self.min_rating is not None or self.max_rating is not None:
            elos = (_elo(headers.get("WhiteElo")), _elo(headers.get("BlackElo")))
            if None in elos:
                return "rating"
            lo = self.min_rating if self.min_rating is not None else -(1 << 30)
            hi = self.max_rating if self.max_rating is not None else 1 << 30
            if not all(lo <= e <= hi for e in elos):
                return "rating"
        if self.time_controls:
            tc = headers.get("TimeControl", "").strip()
            speed = speed_class(tc)
            if not any(want == tc or want.lower() == speed for want in self.time_controls):
                return "time_control"
        return None


# -- reading compressed files -------------------------------------------------------------------------
class _ZstdFrames:
    """Follows zstd frame and block headers (RFC 8878) through the compressed bytes, without
    decompressing, to tell whether the stream ends between frames: zstandard's readers end quietly
    on a truncated file (an interrupted download of a Lichess dump would pass for a short one)."""

    def __init__(self):
        self.state, self.need, self.buf, self.skip = "magic", 4, b"", 0
        self.checksum = False

    @property
    def complete(self) -> bool:
        return self.state in ("magic", "unknown") and not self.buf and not self.skip

    def feed(self, data) -> None:
        pos, n = 0, len(data)
        while pos < n and self.state != "unknown":
            if self.skip:
                k = min(self.skip, n - pos)
                self.skip -= k
                pos += k
                continue
            take = min(self.need - len(self.buf), n - pos)
            self.buf += bytes(data[pos : pos + take])
            pos += take
            if len(self.buf) == self.need:
                field, self.buf = self.buf, b""
                self._step(field)

    def _step(self, field: bytes) -> None:
        if self.state == "magic":
            magic = int.from_bytes(field, "little")
            if field == _ZSTD_MAGIC:
                self.state, self.need = "descriptor", 1
            elif magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame
                self.state, self.need = "skippable", 4
            else:
                self.state = "unknown"  # the decompressor names the problem
        elif self.state == "descriptor":
            d = field[0]
            single_segment = bool(d & 0x20)
            fcs = (0 if not single_segment else 1, 2, 4, 8)[d >> 6]
            self.checksum = bool(d & 0x04)
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[d & 0x03] + fcs
            self.state, self.need = ("header", rest) if rest else ("block", 3)
        elif self.state == "header":
            self.state, self.need = "block", 3
        elif self.state == "block":
            h = int.from_bytes(field, "little")
            last, kind, size = h & 1, (h >> 1) & 3, h >> 3
            self.skip = 1 if kind == 1 else size  # RLE blocks store one byte
            if last:
                self.skip += 4 if self.checksum else 0
                self.state, self.need = "magic", 4
        elif self.state == "skippable":
            self.skip = int.from_bytes(field, "little")
            self.state, self.need = "magic", 4


class _CountingReader(io.RawIOBase):
    """A binary file whose bytes are counted (progress), hashed (manifest) and, for zstd, followed
    frame by frame (truncation) as they are read."""

    def __init__(self, f, frames: _ZstdFrames | None = None):
        self.f = f
        self.count = 0
        self.sha = hashlib.sha256()
        self.frames = frames

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.f.readinto(b)
        if n:
            view = memoryview(b)[:n]
            self.sha.update(view)
            self.count += n
            if self.frames is not None:
                self.frames.feed(view)
        return n

    def drain(self) -> None:
        """Hash the rest of the file (after an early stop) so the sha256 covers all of it."""
        for chunk in iter(lambda: self.f.read(1 << 20), b""):
            self.sha.update(chunk)
            self.count += len(chunk)


def compression_of(path: str | os.PathLike) -> str:
    """``'zstd'``, ``'gzip'`` or ``'none'`` from a file's first bytes; a name that promises a
    compression the bytes don't have is an error."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise ConceptChessError(f"{path}: cannot read ({e.strerror})") from None
    kind = "zstd" if head == _ZSTD_MAGIC else "gzip" if head[:2] == _GZIP_MAGIC else "none"
    named = {".zst": "zstd", ".zstd": "zstd", ".gz": "gzip"}.get(path.suffix.lower())
    if head and named and named != kind:
        raise ConceptChessError(f"{path}: not {named} data (corrupt or misnamed file)")
    return kind


def _text_stream(counting: _CountingReader, kind: str, newline: str | None = None) -> io.TextIOWrapper:
    if kind == "zstd":
        import zstandard  # lazy: only .zst files need it

        # max_window_size: Lichess dumps may be compressed with --long
        dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
        binary = io.BufferedReader(dctx.stream_reader(counting, read_size=_CHUNK, read_across_frames=True), 1 << 20)
    elif kind == "gzip":
        binary = gzip.GzipFile(fileobj=io.BufferedReader(counting, _CHUNK), mode="rb")
    else:
        binary = io.BufferedReader(counting, 1 << 20)
    return io.TextIOWrapper(binary, encoding="utf-8", errors="strict", newline=newline)


def _read_error(path: Path, kind: str, counting: _CountingReader, e: Exception, hint: str = "") -> ConceptChessError | None:
    """The one-line error of a failed read of ``path`` (None: ``e`` is not a reading error)."""
    import zstandard  # lazy: see _text_stream

    if isinstance(e, zstandard.ZstdError):
        return ConceptChessError(f"{path}: corrupt zstd data ({e})")
    if isinstance(e, (EOFError, zlib.error, gzip.BadGzipFile)):
        return ConceptChessError(f"{path}: corrupt or truncated {kind} data ({e})")
    if isinstance(e, UnicodeDecodeError):
        if counting.frames is not None and not counting.frames.complete and counting.count == Path(path).stat().st_size:
            return ConceptChessError(f"{path}: truncated zstd data (the file ends inside a frame)")
        return ConceptChessError(f"{path}: not UTF-8 text ({e.reason} after ~{counting.count} bytes read{hint})")
    return None


def _truncated(path: Path, counting: _CountingReader) -> ConceptChessError | None:
    if counting.frames is not None and not counting.frames.complete:
        return ConceptChessError(f"{path}: truncated zstd data (the file ends inside a frame)")
    return None


@contextmanager
def open_text(path: str | os.PathLike, *, newline: str | None = None) -> Iterator[io.TextIOWrapper]:
    """A UTF-8 text stream of a plain, gzip or zstd file, streamed (the compression is told by the
    first bytes; a name promising another one is refused). Corrupt, truncated or non-UTF-8 data is a
    one-line :class:`ConceptChessError` naming the file. ``newline`` as for :func:`open` (``""`` for
    the csv module).

    >>> with open_text("lichess_db_puzzle.csv.zst", newline="") as f:     # doctest: +SKIP
    ...     rows = list(csv.DictReader(f))
    """
    path = Path(path)
    kind = compression_of(path)
    with open(path, "rb", buffering=0) as raw:
        counting = _CountingReader(raw, _ZstdFrames() if kind == "zstd" else None)
        try:
            yield _text_stream(counting, kind, newline)
        except Exception as e:
            err = _read_error(path, kind, counting, e)
            if err is None:
                raise
            raise err from None
        if counting.count == path.stat().st_size:
            err = _truncated(path, counting)
            if err is not None:
                raise err


# -- one game at a time -------------------------------------------------------------------------------
@dataclass
class Sampling:
    """Which positions of a kept game become records (see the module docstring)."""

    skip_plies: int = 0
    every: int = 1
    max_positions: int | None = None
    dedup: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.skip_plies < 0:
            raise ArgumentError("{skip_plies} must be 0 or more", skip_plies="skip_plies")
        if self.every < 1:
            raise ArgumentError("{every} must be 1 or more", every="every")
        if self.max_positions is not None and self.max_positions < 1:
            raise ArgumentError("{max_positions} must be 1 or more", max_positions="max_positions")

    def first_ply(self, game: int) -> int:
        """First ply kept in game number ``game``: ``skip_plies`` plus a seeded offset below ``every``."""
        if self.every == 1:
            return self.skip_plies
        return self.skip_plies + int(np.random.default_rng([self.seed, game]).integers(self.every))




def position_key(board: chess.Board) -> tuple:
    """What ``dedup`` compares: pieces, side to move, castling rights, en-passant square (when legal)."""
    return (board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings,
            board.occupied_co[chess.WHITE], board.occupied_co[chess.BLACK], board.turn,
            board.clean_castling_rights(), board.ep_square if board.has_legal_en_passant() else -1)


# what python-chess's movetext parser reads (its own tokens) or passes over as PGN (comments, escape lines,
# move numbers, check marks, "e.p.", white space); any other text, python-chess skips without a word
_PGN_TEXT = re.compile(r"\{[^}]*\}?|;[^\n]*|^%[^\n]*|" + chess.pgn.MOVETEXT_REGEX.pattern + r"|\d+\.*|[+\#]|e\.p\.|\s+",
                       re.MULTILINE | re.VERBOSE)


def stray_text(movetext: str) -> str | None:
    """The first word of ``movetext`` that is not PGN (python-chess passes over it silently), or None.

    >>> stray_text("1. e4 { [%clk 0:01:00] } 1... e5?! 2. Qh5 Nc6 3. Bc4 Nf6 4. Qxf7# 1-0"), stray_text("1. e4 hello 1-0")
    (None, 'hello')
    """
    if not _PGN_TEXT.sub("", movetext):
        return None
    pos = 0
    for m in _PGN_TEXT.finditer(movetext):
        if m.start() > pos:
            break
        pos = m.end()
    start = max(movetext.rfind(" ", 0, pos), movetext.rfind("\n", 0, pos)) + 1
    return movetext[start:].split(None, 1)[0]


class _LineTap:
    """The text python-chess reads a file's games from, line by line, keeping the lines of one game's
    movetext between :meth:`start` (the movetext begins with the line last read) and :meth:`stop`."""

    def __init__(self, text: io.TextIOBase):
        self.text = text
        self.last = ""
        self.lines: list[str] | None = None

    def readline(self) -> str:
        self.last = self.text.readline()
        if self.lines is not None:
            self.lines.append(self.last)
        return self.last

    def start(self) -> None:
        self.lines = [self.last]

    def stop(self) -> str:
        text = "".join(self.lines or ())
        self.lines = None
        return text


_MOVE_ERRORS = (chess.IllegalMoveError, chess.AmbiguousMoveError, chess.InvalidMoveError)


class _GameVisitor(chess.pgn.BaseVisitor):
    """Builds the candidate records of one game while python-chess parses it (no game tree), and
    notes what is wrong with it (:attr:`problem`)."""

    def __init__(self, reader: "PgnPositions", tap: _LineTap):
        self.reader = reader
        self.tap = tap

    def begin_game(self):
        self.headers = chess.pgn.Headers({})
        self.reason: str | None = None
        self.error: Exception | None = None
        self.stray: str | None = None
        self.start: chess.Board | None = None
        self.moves: list[chess.Move] = []
        self.clocks: list = []  # clocks[i]: [%clk] after move i+1 (of the player who made it)
        self.hmc: list[int] = []
        self.origins: list[chess.Board | None] = []  # copies where a record's history may start
        self.fens: dict[int, str] = {}  # FEN of each origin, written once
        self.candidates: list[tuple[int, chess.Move | None, tuple | None]] = []

    def begin_headers(self):
        return self.headers

    def visit_header(self, tagname: str, tagvalue: str):
        self.headers[tagname] = tagvalue

    def end_headers(self):
        # a game without tag pairs is parsed whatever the filters say: it may be a sign of a non-PGN file
        self.reason = self.reader.filter.reject(self.headers) if self.headers else None
        if self.reason is not None:
            return chess.pgn.SKIP
        self.tap.start()
        r = self.reader
        self.game = r.game_index
        self.first = r.sampling.first_ply(self.game)
        self.every = r.sampling.every
        self.dedup = r.sampling.dedup
        tc = self.headers.get("TimeControl", "")
        m = _TC_REGEX.fullmatch(tc.strip())
        self.base_clock = int(m.group(1)) if m else None
        return None

    def visit_board(self, board: chess.Board):
        if self.start is None:
            self.start = board.copy(stack=False)
            if board.chess960:
                self.reason = "chess960"
        self.board = board  # the board python-chess replays the mainline on (variations are skipped)

    def begin_parse_san(self, board: chess.Board, san: str):
        if self.reason is not None or self.error is not None:
            return chess.pgn.SKIP
        return None

    def visit_move(self, board: chess.Board, move: chess.Move):
        self._position(board, move)
        self.moves.append(move)

    def visit_comment(self, comment: str):
        n = len(self.moves)
        if n and "%clk" in comment:
            while len(self.clocks) < n:
                self.clocks.append(None)
            self.clocks[n - 1] = parse_clock(comment)

    def begin_variation(self):
        return chess.pgn.SKIP

    def handle_error(self, error: Exception):
        if self.error is None:
            self.error = error

    def end_game(self):
        movetext = self.tap.stop()
        if self.reason is None:
            self.stray = stray_text(movetext)
        if self.reason is None and self.error is None and self.start is not None:
            self._position(self.board, None)

    def result(self):
        return True

    @property
    def problem(self) -> tuple[str, str] | None:
        """``(reason, message)`` of a game with errors (see the module docstring), None for a good one."""
        if self.error is not None:
            return ("illegal_move" if isinstance(self.error, _MOVE_ERRORS) else "pgn_error"), str(self.error)
        if self.stray is not None:
            return "not_pgn", f"text that is not PGN ({self.stray!r})"
        if not self.headers and not self.moves:
            return "not_pgn", "no tag pairs and no moves"
        return None

    # -- records ------------------------------------------------------------------------------------
    def _position(self, board: chess.Board, move: chess.Move | None) -> None:
        t = len(self.moves)
        self.hmc.append(board.halfmove_clock)
        self.origins.append(board.copy(stack=False) if t == 0 or board.halfmove_clock == 0 else None)
        if t < self.first or (t - self.first) % self.every:
            return
        key = position_key(board) if self.dedup else None
        self.candidates.append((t, move, key))

    def records(self, source: str) -> Iterator[tuple[dict, object]]:
        h = self.headers
        white_elo, black_elo = _elo(h.get("WhiteElo")), _elo(h.get("BlackElo"))
        result = h.get("Result", "*")
        site = h.get("Site")
        has_clocks = any(c is not None for c in self.clocks)
        for t, move, key in self.candidates:
            rec = {"id": f"g{self.game}-p{t}"}
            rec.update(position_record(self.start, self.moves, t, self.hmc, self.origins, self.fens))
            if t >= 2:
                clock = self.clocks[t - 2] if t - 2 < len(self.clocks) else None
            else:
                clock = self.base_clock if has_clocks else None
            rec.update(game=self.game, ply=t, move=move.uci() if move is not None else None, result=result,
                       white_elo=white_elo, black_elo=black_elo, clock=clock, source=source)
            if site and site != "?":
                rec["site"] = site
            yield rec, key


@dataclass
class SourceInfo:
    file: str
    path: str
    compression: str
    bytes: int
    sha256: str = ""
    games: int = 0


@dataclass
class _OpenFile:
    """One input file being read: its manifest entry, its counted bytes, its games, its errors."""

    path: Path
    info: SourceInfo
    counting: _CountingReader
    games: Iterator[_GameVisitor] | None = None
    errors: int = 0
    first_error: str = ""
    finished: bool = False


@dataclass
class PgnPositions:
    """Iterate the position records of PGN files (see the module docstring); ``counts`` and
    ``sources`` fill in as it goes and are complete once the iteration ends.

    ``progress(done, total)`` is called now and then with the compressed bytes read so far and in all
    (all files together); ``warn(message)`` with each game with tag pairs skipped for an error (games
    without tag pairs are counted only: they are what text that is not PGN reads as). ``interleave``:
    read the files in turn, one game from each, instead of one after another.
    """

    paths: list[str | os.PathLike]
    filter: GameFilter = field(default_factory=GameFilter)
    sampling: Sampling = field(default_factory=Sampling)
    progress: Progress | None = None
    warn: Callable[[str], None] | None = None
    interleave: bool = False

    def __post_init__(self):
        self.paths = [Path(p) for p in self.paths]
        for p in self.paths:
            if not p.is_file():
                raise ConceptChessError(f"{p}: no such PGN file")
        self.counts: Counter = Counter()
        self.skipped: Counter = Counter()
        self.sources: list[SourceInfo] = []
        self.game_index = 0
        self.stopped_early = False

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def summary(self) -> dict:
        return {
            "games_read": self.counts["games_read"],
            "games_kept": self.counts["games_kept"],
            "games_skipped": dict(sorted(self.skipped.items())),
            "games_with_illegal_moves": self.skipped["illegal_move"],
            "positions_written": self.counts["positions_written"],
            "positions_dropped_as_duplicates": self.counts["positions_dropped_as_duplicates"],
            "stopped_at_max_positions": self.stopped_early,
        }

    def __iter__(self) -> Iterator[dict]:
        seen: set[int] = set()
        total = self.total_bytes
        max_positions = self.sampling.max_positions
        if self.progress is not None:
            self.progress(0, total)
        files: list[_OpenFile] = []
        last_report = -1
        with ExitStack() as stack:
            for f, visitor in self._games_in_order(stack, files):
                n = self.game_index
                self.game_index += 1
                f.info.games += 1
                self.counts["games_read"] += 1
                yield from self._records(f, visitor, n, seen)
                if max_positions is not None and self.counts["positions_written"] >= max_positions:
                    self.stopped_early = True
                if self.progress is not None and (n & 15 == 0 or self.stopped_early):
                    done = sum(o.counting.count for o in files)
                    if done != last_report:
                        self.progress(done, total)
                        last_report = done
                if self.stopped_early:
                    break
            for f in files:
                if not f.finished:  # stopped early: hash the rest, so the manifest names every input exactly
                    f.counting.drain()
                    f.info.sha256 = f.counting.sha.hexdigest()
        for rest in self.paths[len(files):]:
            self.sources.append(SourceInfo(rest.name, str(rest), compression_of(rest), rest.stat().st_size, sha256_of(rest)))
        if self.progress is not None and not self.stopped_early:
            self.progress(total, total)

    def _games_in_order(self, stack: ExitStack, files: list[_OpenFile]) -> Iterator[tuple[_OpenFile, _GameVisitor]]:
        """Each game as python-chess parses it, with its file: file after file, or in turn (interleave)."""
        def open_file(path: Path) -> _OpenFile:
            info = SourceInfo(path.name, str(path), compression_of(path), path.stat().st_size)
            self.sources.append(info)
            raw = stack.enter_context(open(path, "rb", buffering=0))
            f = _OpenFile(path, info, _CountingReader(raw, _ZstdFrames() if info.compression == "zstd" else None))
            f.games = self._read_file(f)
            files.append(f)
            return f

        if not self.interleave:
            for path in self.paths:
                f = open_file(path)
                for visitor in f.games:
                    yield f, visitor
                self._finish(f)
            return
        active = [open_file(path) for path in self.paths]
        while active:
            for f in list(active):
                visitor = next(f.games, None)
                if visitor is None:
                    self._finish(f)
                    active.remove(f)
                else:
                    yield f, visitor

    def _read_file(self, f: _OpenFile) -> Iterator[_GameVisitor]:
        """The games of one file, each as its visitor once python-chess has parsed it (the same visitor
        object each time: read it before asking for the next game)."""
        tap = _LineTap(_text_stream(f.counting, f.info.compression))
        visitor = _GameVisitor(self, tap)
        while True:
            try:
                found = chess.pgn.read_game(tap, Visitor=lambda: visitor)
            except Exception as e:
                err = _read_error(f.path, f.info.compression, f.counting, e, "; is it a PGN file?")
                if err is None:
                    raise
                raise err from None
            if found is None:
                err = _truncated(f.path, f.counting)
                if err is not None:
                    raise err
                return
            yield visitor

    def _finish(self, f: _OpenFile) -> None:
        """A file read to its end: refused when every game in it has errors, else hashed."""
        if f.info.games and f.errors == f.info.games:
            said = "its only game has" if f.info.games == 1 else f"all its {f.info.games} games have"
            raise ConceptChessError(f"{f.path}: not PGN ({said} errors; game 1: {f.first_error})")
        f.counting.drain()
        f.info.sha256 = f.counting.sha.hexdigest()
        f.finished = True

    def _records(self, f: _OpenFile, visitor: _GameVisitor, n: int, seen: set[int]) -> Iterator[dict]:
        """Count game number ``n`` (kept, or skipped for a filter or an error) and yield its records."""
        problem = visitor.problem if visitor.reason is None else None
        if not visitor.headers and problem is None:
            visitor.reason = visitor.reason or self.filter.reject(visitor.headers)
        if visitor.reason is not None:
            self.skipped[visitor.reason] += 1
            return
        if problem is not None:
            reason, message = problem
            self.skipped[reason] += 1
            f.errors += 1
            f.first_error = f.first_error or message
            if self.warn is not None and visitor.headers:
                site = visitor.headers.get("Site", "?")
                self.warn(f"{f.path.name}: game {f.info.games} (id g{n}, {site}) skipped: {message}")
            return
        self.counts["games_kept"] += 1
        max_positions = self.sampling.max_positions
        for rec, key in visitor.records(f.path.name):
            if key is not None:
                h = hash(key)
                if h in seen:
                    self.counts["positions_dropped_as_duplicates"] += 1
                    continue
                seen.add(h)
            yield rec
            self.counts["positions_written"] += 1
            if max_positions is not None and self.counts["positions_written"] >= max_positions:
                return


def pgn_dataset(paths: Iterable[str | os.PathLike], output: str | os.PathLike, *, filter: GameFilter | None = None,
                sampling: Sampling | None = None, overwrite: bool = False, progress: Progress | None = None,
                warn: Callable[[str], None] | None = None, interleave: bool = False) -> dict:
    """Write the positions of PGN files to a dataset folder; returns its manifest.

    Nothing is left behind on error (the dataset is written to a temporary folder renamed at the end).
    ``progress(done, total)`` counts compressed bytes read (see :class:`PgnPositions`); its first call,
    ``(0, total)``, comes once the inputs are checked, before reading.
    """
    reader = PgnPositions(list(paths), filter or GameFilter(), sampling or Sampling(), progress, warn, interleave)
    for p in reader.paths:
        compression_of(p)  # refuse misnamed files before anything is written
    manifest = {"kind": "positions", "origin": HUMAN_GAMES, "made_by": "positions from-pgn"}
    with DatasetWriter(output, manifest, overwrite=overwrite) as w:
        for rec in reader:
            w.write(rec)
        f, s = reader.filter, reader.sampling
        manifest.update(
            sources=[asdict(si) for si in reader.sources],
            filters={"min_rating": f.min_rating, "max_rating": f.max_rating, "time_controls": list(f.time_controls),
                     "variants": "standard only (no Chess960)"},
            sampling={"skip_plies": s.skip_plies, "every": s.every, "max_positions": s.max_positions, "dedup": s.dedup,
                      "final_positions": True, "files": "in turn" if interleave else "one after another"},
            seed=s.seed,
            counts=reader.summary(),
            software=software_versions("chess", "numpy"),
        )
        manifest["positions"] = reader.counts["positions_written"]
        w.manifest = manifest
    return manifest
