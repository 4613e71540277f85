"""
leakscan: does a secret arrive in any recoverable form?

The oracle of the bypass corpus (tests/bypass/README.md). Given the exact
bytes an upstream received and the secrets that were embedded in the
request, it decodes what arrived the way an accomplice on the far side
would, and reports every secret it finds in any of those forms:

  * HTTP framing: the head and the body apart, chunked bodies de-chunked,
    the fields a head repeats combined as a recipient may (RFC 9110 5.3);
  * compression: gzip (nested, multi-member, at any offset), zlib, raw deflate;
  * charsets: UTF-8, UTF-16LE/BE and UTF-32LE/BE (every alignment), GB18030
    (GBK), Big5, Shift_JIS, UTF-7, EBCDIC (cp037), Latin-1;
  * text escapes: percent-encoding (once, twice, `+`, IIS `%uXXXX`), HTML/XML
    entities, JSON `\\u` escapes (surrogate pairs included), `\\xNN`,
    quoted-printable;
  * tokens: base64 (standard and URL alphabet, padded or not, MIME lines
    joined), base32 (either case) and hex of 8 bytes or more, decoded and
    scanned again;
  * Unicode: every character with a digit value (unicodedata.digit: Nd,
    circled, superscripts, mathematical...) folded to ASCII, Chinese
    numerals (〇一二..., 壹贰叁..., 幺) too, Cyrillic and Greek look-alikes
    of the check character X, NFKC, and the invisible characters removed
    (Cf, Mn, Me, Hangul fillers);
  * markup: HTML/XML comments removed (what a browser renders); XML
    internal entities (`<!ENTITY a "1381234">` ... `&a;5678`) expanded;
  * values in pieces: the digit-only values of a JSON document (in document
    order, other values skipped) and of a form or query string, joined
    (`{"region": "110105", "birth": "19491231", "seq": "002X"}`);
  * spelling: the secret's digits in order with up to MAX_SEP characters that
    are not ASCII letters or digits between any two (`138.1234.5678`,
    `1-3-8...`, `(138) 1234 5678`, `1.3812345678e10`); a check character X
    in either case.

A masked value (`138****5678`) or a keyed pseudonym does not contain the
digit string and is not reported; the full digit string in any of the forms
above is. Work is bounded (MAX_DEPTH nested decodings, MAX_VIEWS texts per
call), so a hostile upstream record cannot make the scan run away.
"""

import base64
import binascii
import collections
import html
import quopri
import re
import unicodedata
import zlib
from urllib.parse import unquote_to_bytes

MAX_DEPTH = 5
MAX_VIEWS = 6000
MAX_SEP = 5

_SEP = r"[^0-9A-Za-z]{0,%d}" % MAX_SEP

# Characters that render as nothing and that some scanners keep.
_INVISIBLE_LO = {"\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", "\u180e"}

_CHARSETS = ("gb18030", "big5", "shift_jis", "cp037")
_WIDE = (("utf-16-le", 2), ("utf-16-be", 2), ("utf-32-le", 4), ("utf-32-be", 4))

_B64 = re.compile(r"[A-Za-z0-9+/_\-]{12,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")
_HEX_SEP = re.compile(r"(?:[0-9a-fA-F]{2}[ :\-]){7,}[0-9a-fA-F]{2}")
_JSON_U = re.compile(r"\\u([0-9a-fA-F]{4})")
_IIS_U = re.compile(r"%u([0-9a-fA-F]{4})")
_C_X = re.compile(r"\\x([0-9a-fA-F]{2})")
_C_OCT = re.compile(r"\\([0-7]{3})")
_ES6_U = re.compile(r"\\u\{([0-9a-fA-F]{1,6})\}")
_B32 = re.compile(r"[A-Z2-7]{16,}={0,6}|[a-z2-7]{16,}={0,6}")
# Chinese numerals people write digits with (〇/零 一 二 ... 九), the
# financial forms (壹贰叁...), 幺 (one, as phone numbers are spoken), 两.
_CJK_DIGITS = {"〇": "0", "零": "0", "一": "1", "二": "2", "三": "3", "四": "4", "五": "5",
               "六": "6", "七": "7", "八": "8", "九": "9", "壹": "1", "贰": "2", "貳": "2",
               "叁": "3", "參": "3", "肆": "4", "伍": "5", "陆": "6", "陸": "6", "柒": "7",
               "捌": "8", "玖": "9", "幺": "1", "两": "2"}
# Letters that look like the check character X (Cyrillic, Greek).
_X_LIKE = {"\u0425": "X", "\u0445": "x", "\u03a7": "X", "\u03c7": "x"}
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_PCT = re.compile(r"%([0-9a-fA-F]{2})")
_GZ = b"\x1f\x8b\x08"


_CTL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _looks_binary(b):
    """True when B is not plain UTF-8 text: NULs or other control bytes (UTF-16
    and UTF-32 of any digit have them) or invalid UTF-8 (GBK, EBCDIC...)."""
    if _CTL.search(b):
        return True
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def secret_pattern(secret):
    """A regex for SECRET's characters in order, separators allowed between."""
    parts = []
    for ch in secret:
        parts.append("[Xx]" if ch in "Xx" else re.escape(ch))
    return re.compile(_SEP.join(parts))


def fold(text):
    """Digit values to ASCII digits; invisible characters removed."""
    out = []
    for ch in text:
        if ch < "\x80":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Mn", "Me") or ch in _INVISIBLE_LO:
            continue
        d = unicodedata.digit(ch, None)
        out.append(str(d) if d is not None else _CJK_DIGITS.get(ch, _X_LIKE.get(ch, ch)))
    return "".join(out)


def _dechunk(body):
    """The payload of a chunked body (best effort; None when not chunked)."""
    out = b""
    i = 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return None
        size = body[i:j].split(b";")[0].strip()
        try:
            n = int(size, 16)
        except ValueError:
            return None
        if n == 0:
            return out
        out += body[j + 2:j + 2 + n]
        i = j + 2 + n + 2


def _decompress(blob):
    """Every plausible decompression of BLOB (gzip members anywhere, zlib, raw deflate)."""
    outs = []
    start = 0
    while True:
        k = blob.find(_GZ, start)
        if k < 0:
            break
        start = k + 1
        try:
            d = zlib.decompressobj(wbits=31)
            o = d.decompress(blob[k:], 1 << 22)
            if o:
                outs.append(o)
        except zlib.error:
            pass
    cands = [(off, 15) for off in range(min(len(blob) - 1, 4096))
             if blob[off] == 0x78 and (blob[off] * 256 + blob[off + 1]) % 31 == 0]
    for off, wbits in cands + [(0, -15)]:
        try:
            d = zlib.decompressobj(wbits=wbits)
            o = d.decompress(blob[off:], 1 << 22)
            if o and (wbits == 15 or d.eof):
                outs.append(o)
        except zlib.error:
            pass
    return outs


def _b64_decode(tok):
    outs = []
    t = tok.rstrip("=")
    pad = "=" * (-len(t) % 4)
    for alt in (None, b"-_"):
        try:
            if alt is None:
                outs.append(base64.b64decode(t + pad, validate=False))
            else:
                outs.append(base64.urlsafe_b64decode(t + pad))
        except (binascii.Error, ValueError):
            pass
    return outs


_ENTITY_DECL = re.compile(r"""<!ENTITY\s+([A-Za-z_][\w.\-]*)\s+(?:"([^"]*)"|'([^']*)')""", re.I)
_PIECE = re.compile(r"[0-9]{1,17}[Xx]?")


def _json_leaves(v, out):
    if isinstance(v, dict):
        for x in v.values():
            _json_leaves(x, out)
    elif isinstance(v, list):
        for x in v:
            _json_leaves(x, out)
    elif isinstance(v, bool) or v is None:
        pass
    elif isinstance(v, str) and v.lstrip()[:1] in ("{", "["):
        try:
            import json
            _json_leaves(json.loads(v), out)  # JSON held in a string: its values
        except (ValueError, RecursionError):
            out.append(v)
    elif isinstance(v, (int, str)):
        out.append(str(v))


def _pieces(text):
    """The digit-only values of TEXT read as JSON or as a form / query
    string, joined in order; None when it is neither or has fewer than 2."""
    leaves = []
    try:
        import json
        _json_leaves(json.loads(text), leaves)
    except (ValueError, RecursionError):
        if "form-data" in text:  # multipart: each part's content
            leaves = re.findall(r"form-data[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n(.*?)\r?\n--", text, re.S)
        if "=" not in text and not leaves and not re.match(r"[A-Za-z]+ \S+ HTTP/", text):
            return None
        line = re.match(r"[A-Za-z]+ (\S+) HTTP/", text)  # a request head: its target's query
        query = line.group(1).split("?", 1)[-1] if line else text.split("?", 1)[-1]
        for pair in re.split(r"[&;]", query) if not leaves else ():
            if "=" in pair:
                leaves.append(pair.split("=", 1)[1])
        if line:  # ... and its header values, in order
            head = text.split("\r\n\r\n", 1)[0]
            leaves += [m.group(1).strip() for m in re.finditer(r"\r?\n[^:\r\n]+:([^\r\n]*)", head)]
    # as a reader reads a piece: other scripts' digits folded, the
    # separators written inside a number and a leading "+" dropped
    norm = [re.sub(r"[\-. /]", "", fold(x)).lstrip("+") for x in leaves]
    digits = [x for x in norm if _PIECE.fullmatch(x)]
    return "".join(digits) if len(digits) >= 2 else None


def _json_unescape(text):
    """TEXT with JSON string escapes decoded (best effort)."""
    try:
        # Surrogate pairs come out whole through the utf-16 round trip.
        s = _JSON_U.sub(lambda m: chr(int(m.group(1), 16)), text)
        s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    except (UnicodeError, ValueError):
        s = text
    for a, b in (("\\/", "/"), ("\\n", "\n"), ("\\t", "\t"), ("\\r", "\r"), ('\\"', '"'), ("\\\\", "\\")):
        s = s.replace(a, b)
    return s


class _Scan:
    """A breadth-first walk over the decodings of what arrived: shallow forms
    first, so the MAX_VIEWS budget is not spent deep inside one branch."""

    def __init__(self, secrets):
        self.pats = [(s, secret_pattern(s)) for s in secrets]
        self.found = {}
        self.seen = set()
        self.views = 0
        self.queue = collections.deque()

    def done(self):
        return len(self.found) == len(self.pats) or self.views >= MAX_VIEWS

    def push(self, kind, data, depth, how):
        if data and depth <= MAX_DEPTH:
            self.queue.append((kind, data, depth, how))

    def run(self):
        while self.queue and not self.done():
            kind, data, depth, how = self.queue.popleft()
            # The data itself, not hash(): a UCS-2 str and the Latin-1 str of
            # its buffer's bytes hash alike in CPython.
            key = (kind, data)
            if key in self.seen:
                continue
            self.seen.add(key)
            if kind == "b":
                self.blob(data, depth, how)
            else:
                self.text(data, depth, how)

    def text(self, s, depth, how):
        self.views += 1
        for cand in (s, fold(s), unicodedata.normalize("NFKC", fold(s))):
            for sec, pat in self.pats:
                if sec not in self.found and pat.search(cand):
                    self.found[sec] = how
        d = depth + 1
        if "%" in s:
            self.push("t", _IIS_U.sub(lambda m: chr(int(m.group(1), 16)), s), d, how + "+%u")
            self.push("b", unquote_to_bytes(s), d, how + "+pct")
            self.push("b", unquote_to_bytes(s.replace("+", " ")), d, how + "+pct+")
        if "&" in s:
            self.push("t", html.unescape(s), d, how + "+entities")
        if "<!--" in s:
            self.push("t", _COMMENT.sub("", s), d, how + "+uncomment")
        ents = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
                for m in _ENTITY_DECL.finditer(s)}
        if ents:
            self.push("t", re.sub(r"&([A-Za-z_][\w.\-]*);", lambda m: ents.get(m.group(1), m.group(0)), s),
                      d, how + "+dtd")
        if depth <= 1:
            joined_pieces = _pieces(s)
            if joined_pieces:
                self.push("t", joined_pieces, d, how + "+pieces")
        if "\\" in s:
            self.push("t", _json_unescape(s), d, how + "+json")
            self.push("b", _C_X.sub(lambda m: chr(int(m.group(1), 16)), s).encode("latin-1", "ignore"), d,
                      how + "+\\x")
            self.push("t", _C_OCT.sub(lambda m: chr(int(m.group(1), 8)), s), d, how + "+octal")
            self.push("t", _ES6_U.sub(lambda m: chr(min(int(m.group(1), 16), 0x10FFFF)), s), d, how + "+\\u{}")
        if "=" in s and re.search(r"=[0-9A-Fa-f]{2}|=\r?\n", s):
            try:
                self.push("b", quopri.decodestring(s.encode("latin-1", "ignore")), d, how + "+qp")
            except ValueError:
                pass
        joined = re.sub(r"\s+", "", s)
        for src in (s, joined) if joined != s else (s,):
            for m in _B64.finditer(src):
                tok = m.group(0)
                # a path of base64url segments: each segment alone too
                toks = [tok] + [p for p in tok.split("/") if len(p) >= 12] if "/" in tok else [tok]
                for tk in toks:
                    for b in _b64_decode(tk):
                        self.push("b", b, d, how + "+b64")
            for m in _B32.finditer(src):
                tok = m.group(0).rstrip("=")
                try:
                    self.push("b", base64.b32decode(tok.upper() + "=" * (-len(tok) % 8)), d, how + "+b32")
                except (ValueError, binascii.Error):
                    pass
            for m in _HEX.finditer(src):
                self.push("b", bytes.fromhex(m.group(0)), d, how + "+hex")
            for m in _HEX_SEP.finditer(src):
                self.push("b", bytes.fromhex(re.sub(r"[ :\-]", "", m.group(0))), d, how + "+hex")

    def blob(self, b, depth, how):
        for o in _decompress(b):
            self.push("b", o, depth + 1, how + "+inflate")
        self.push("t", b.decode("latin-1"), depth, how)
        self.push("t", b.decode("utf-8", "ignore"), depth, how + "+utf-8")
        if b"+" in b and b"-" in b:
            self.push("t", b.decode("utf-7", "ignore"), depth, how + "+utf-7")
        if not _looks_binary(b):
            return  # the other charsets read ASCII/UTF-8 text as itself or as noise
        for cs in _CHARSETS:
            try:
                self.push("t", b.decode(cs, "ignore"), depth, how + "+" + cs)
            except (UnicodeError, LookupError):
                pass
        for cs, width in _WIDE:
            for off in range(width):
                self.push("t", b[off:].decode(cs, "ignore"), depth, how + "+" + cs)


_HEAD = re.compile(rb"(?:^|\r\n\r\n)([A-Za-z]+ [^\r\n]* HTTP/1\.[01]\r\n(?:[^\r\n]+\r\n)*)")


def combined_fields(data):
    """Every field a request head in DATA repeats, as a recipient may combine
    it (RFC 9110 5.3: the values in order, joined by ", "; Cookie by "; "),
    one line each: a value split over two field lines is whole again."""
    out = []
    for m in _HEAD.finditer(data):
        fields = collections.OrderedDict()
        for line in m.group(1).split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                fields.setdefault(name.strip().lower(), []).append(value.strip())
        for name, values in fields.items():
            if len(values) > 1:
                out.append(name + b": " + (b"; " if name == b"cookie" else b", ").join(values))
    return b"\n".join(out)


def scan(data, secrets):
    """{secret: how it was recovered} for each of SECRETS found in DATA (bytes
    that arrived upstream, possibly several requests); {} when none is."""
    if not secrets or not data:
        return {}
    sc = _Scan(secrets)
    sc.push("b", data, 0, "raw")
    # Repeated fields combined, as the recipient may read them.
    combined = combined_fields(data)
    if combined:
        sc.push("b", combined, 0, "combined")
    # Each request's body apart, de-chunked: framing bytes can sit between digits.
    for part in re.split(rb"\r?\n\r?\n", data, maxsplit=1)[1:]:
        sc.push("b", _dechunk(part), 0, "dechunked")
        sc.push("b", part, 0, "body")
    sc.run()
    return dict(sc.found)
