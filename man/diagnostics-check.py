#!/usr/bin/env python3
"""Check that every message unionmount can show a user is in its man page.

Usage: diagnostics-check.py [--list] [--strict] PAGE SRCDIR

Exit status: 0 when every message is documented, 1 when one is not (each
is printed as FILE:LINE: "FORMAT"), 2 on a usage or parse error (a tag or
a format string this script cannot read).

Messages (the C side)
  Every *.c file under SRCDIR, except the directories in EXCLUDE_DIRS
  (src/ctl is unionctl, which has its own page), is scanned for
    fail(err, errlen, R, "FORMAT", ...)     option and layout refusals
    snprintf(err, errlen, "FORMAT", ...)    refusals while opening branches
    um_log(UM_LOG_ERR, "FORMAT", ...)       a running daemon's errors
    um_log(UM_LOG_WARN, "FORMAT", ...)      ... and warnings
  A call counts only when its first arguments are literally `err, errlen`
  (resp. a literal UM_LOG_ERR/UM_LOG_WARN), which keeps out prototypes and
  the helpers that forward a format they were given. FORMAT is the first
  argument made only of string literals and macros defined as string
  literals (#define USAGE_LINE "..."), concatenated as the compiler does,
  across lines. A matching call whose format is anything else is an error:
  document it by hand and add it to ALLOWLIST, or give it a literal.
  Every printf conversion (%s, %zu, %d, %u, %#llx, %.*s, %m, ...) becomes
  a wildcard; %% is a literal percent sign. um_log at INFO and DEBUG level
  is not checked, nor is libfuse's own text (documented by hand).

Tags (the page side)
  In the DIAGNOSTICS section (from `.SH DIAGNOSTICS` to the next .SH),
  every `.TP` or `.TQ` is followed by a tag line. A tag is a message tag
  when part of it is set in italics: the italic text is the message, and
  every word set in any other font (roman, bold) is a placeholder for a
  variable part, e.g.
      \\fIlowerdir: \\(aq\\fRDIR\\fI\\(aq does not exist\\fR
  Tags without italics (the exit status list) are not messages. The tag
  is rendered by dropping the font escapes (\\fX, \\f(XX, \\f[X], \\fP) and
  \\&, \\:, \\c, and turning \\- into -, \\(aq into ', \\(dq into ", \\e into
  a backslash; an escape not listed in ESCAPES is an error. Tag lines may
  also be .I/.B/.IR/.BI/... macro lines; whitespace runs count as one
  space on both sides.

Matching (whole tags, no prefix rule)
  A message is documented when some tag matches it as a whole, from the
  first character to the last, where
  - a conversion in the message matches any text of the tag (so a tag may
    spell out a value the source fills in: `trusted.unionmount.format`
    for %s, or one tag per value of a %s that takes few values);
  - a placeholder in the tag matches any run of the message's conversions
    and non-blank literal characters (so OPTION may stand for the literal
    `workdir` of one message and the %s of another, grouping two formats
    in one entry), but never a blank: a placeholder cannot swallow words;
  - all other characters must be equal.
  Tags whose text starts with one of EXTERNAL_PREFIXES document messages
  of libfuse or fusermount3, which are not in our sources: they are not
  expected to match anything. Any other tag that matches no message is
  reported as stale (a warning; with --strict it fails the check too).

--list prints every message found, with its file and line, and exits 0.
"""

import os
import re
import sys
from functools import lru_cache

EXCLUDE_DIRS = ("ctl",)

# Messages deliberately not in the page, by their format string exactly
# as the source spells it (after concatenation), each with its reason.
# The page says once, generically, that an out-of-memory message means
# what it says.
ALLOWLIST = {
    "out of memory while parsing options":
        "out of memory: covered by the page's one generic sentence",
    "out of memory while checking the layers":
        "out of memory: covered by the page's one generic sentence",
    "out of memory":
        "out of memory: covered by the page's one generic sentence",
    "%s: internal error: no accepted values":
        "internal error: an overlayfs option without a row in ovl_values (a bug)",
    "%s: internal error: option not handled":
        "internal error: an option kind parse_one_opt has no case for (a bug)",
}

EXTERNAL_PREFIXES = ("fuse:", "fusermount3:")

LOG_LEVELS = ("UM_LOG_ERR", "UM_LOG_WARN")

# Roff escapes a tag may use, and what they render as.
ESCAPES = {
    "-": "-",
    "(aq": "'",
    "(dq": '"',
    "(ha": "^",
    "(ti": "~",
    "(rs": "\\",
    "e": "\\",
    "\\": "\\",
    "&": "",
    ":": "",
    "c": "",
    "/": "",
    ",": "",
    " ": " ",
    "~": " ",
    "0": " ",
    "|": "",
    "^": "",
    ".": ".",
}


class Error(Exception):
    pass


# ---- C side ---------------------------------------------------------------

TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<nl>\n)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<string>(?:u8|[uUL])?"(?:[^"\\\n]|\\.)*")
  | (?P<char>(?:u8|[uUL])?'(?:[^'\\\n]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*)
  | (?P<punct>\#\#|->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!~<>=?:;,.()\[\]{}\#])
  | (?P<other>.)
    """,
    re.S | re.X,
)


def c_unescape(lit, where):
    """Body of a C string literal (without quotes) -> its characters."""
    out = []
    i = 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f",
              "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
    while i < len(lit):
        c = lit[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        c = lit[i]
        if c in simple:
            out.append(simple[c])
            i += 1
        elif c == "x":
            m = re.match(r"[0-9A-Fa-f]+", lit[i + 1:])
            if not m:
                raise Error(f"{where}: bad \\x escape in a string literal")
            out.append(chr(int(m.group(0), 16)))
            i += 1 + len(m.group(0))
        elif c in "01234567":
            m = re.match(r"[0-7]{1,3}", lit[i:])
            out.append(chr(int(m.group(0), 8)))
            i += len(m.group(0))
        else:
            raise Error(f"{where}: unknown escape \\{c} in a string literal")
    return "".join(out)


def tokenize(text):
    """C tokens as (kind, value, line), preprocessor lines as ('pp', text, line)."""
    toks = []
    line = 1
    pos = 0
    at_line_start = True
    n = len(text)
    while pos < n:
        if at_line_start:
            m = re.match(r"[ \t]*#", text[pos:pos + 200])
            if m:
                # A directive, with its backslash-newline continuations.
                end = pos
                while True:
                    nl = text.find("\n", end)
                    if nl < 0:
                        nl = n
                    if nl > 0 and text[nl - 1] == "\\" and nl < n:
                        end = nl + 1
                        continue
                    break
                directive = text[pos:nl]
                toks.append(("pp", directive, line))
                line += directive.count("\n")
                pos = nl
                continue
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise Error(f"line {line}: cannot tokenize")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "nl":
            line += 1
            at_line_start = True
        elif kind in ("ws", "lcomment"):
            pass
        elif kind == "bcomment":
            line += value.count("\n")
        else:
            toks.append((kind, value, line))
            at_line_start = False
        pos = m.end()
    return toks


def string_macros(paths):
    """#define NAME "literal" ... from all given files."""
    macros = {}
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            toks = tokenize(f.read())
        for kind, value, line in toks:
            if kind != "pp":
                continue
            m = re.match(r"\s*#\s*define\s+([A-Za-z_]\w*)\s+(.*)$", value.replace("\\\n", " "), re.S)
            if not m:
                continue
            body = tokenize(m.group(2))
            if body and all(k == "string" for k, _, _ in body):
                macros[m.group(1)] = "".join(
                    c_unescape(v[v.index('"') + 1:-1], f"{path}:{line}") for _, v, _ in body)
    return macros


def split_args(toks, i):
    """toks[i] is '(': the call's arguments as token lists, and the index past ')'."""
    depth = 0
    args = [[]]
    j = i
    while j < len(toks):
        kind, value, _ = toks[j]
        if kind == "punct" and value in "([{":
            depth += 1
            if depth > 1:
                args[-1].append(toks[j])
        elif kind == "punct" and value in ")]}":
            depth -= 1
            if depth == 0:
                return args, j + 1
            args[-1].append(toks[j])
        elif kind == "punct" and value == "," and depth == 1:
            args.append([])
        elif kind != "pp":
            args[-1].append(toks[j])
        j += 1
    raise Error(f"line {toks[i][2]}: unbalanced parentheses")


def literal_value(arg, macros, where):
    """The string an argument of literals and string macros makes, or None."""
    if not arg:
        return None
    parts = []
    for kind, value, _ in arg:
        if kind == "string":
            parts.append(c_unescape(value[value.index('"') + 1:-1], where))
        elif kind == "ident" and value in macros:
            parts.append(macros[value])
        else:
            return None
    # A string macro alone is a literal too; what else reached here is a
    # bare identifier, a format forwarded from elsewhere.
    if not any(k == "string" or (k == "ident" and v in macros) for k, v, _ in arg):
        return None
    return "".join(parts)


def is_ident(arg, name):
    return len(arg) == 1 and arg[0][0] == "ident" and arg[0][1] == name


def find_messages(srcdir):
    """[(path, line, format)] of every user-visible message in srcdir."""
    cfiles, allfiles = [], []
    for root, dirs, files in os.walk(srcdir):
        rel = os.path.relpath(root, srcdir)
        if rel.split(os.sep)[0] in EXCLUDE_DIRS:
            dirs[:] = []
            continue
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith((".c", ".h")):
                allfiles.append(path)
            if name.endswith(".c"):
                cfiles.append(path)
    if not cfiles:
        raise Error(f"{srcdir}: no C sources")
    macros = string_macros(allfiles)
    found = []
    for path in cfiles:
        with open(path, encoding="utf-8", errors="replace") as f:
            try:
                toks = tokenize(f.read())
            except Error as e:
                raise Error(f"{path}: {e}")
        for i, (kind, value, line) in enumerate(toks):
            if kind != "ident" or value not in ("fail", "snprintf", "um_log"):
                continue
            if i + 1 >= len(toks) or toks[i + 1][1] != "(":
                continue
            if i > 0 and toks[i - 1][1] in (".", "->"):
                continue
            args, _ = split_args(toks, i + 1)
            where = f"{path}:{line}"
            if value in ("fail", "snprintf"):
                if len(args) < 3 or not is_ident(args[0], "err") or not is_ident(args[1], "errlen"):
                    continue
                candidates = args[2:] if value == "snprintf" else args[3:]
                if value == "snprintf":
                    candidates = candidates[:1]
            else:
                if len(args) < 2 or not any(is_ident(args[0], lv) for lv in LOG_LEVELS):
                    continue
                candidates = args[1:2]
            fmt = None
            for arg in candidates:
                fmt = literal_value(arg, macros, where)
                if fmt is not None:
                    break
            found.append((path, line, fmt))
    return found


CONV_RE = re.compile(r"%(?:%|[-+ #0']*(?:\*|[0-9]+)?(?:\.(?:\*|[0-9]*))?(?:hh|h|ll|l|j|z|t|L|q)?([diouxXeEfgGaAcspnm]))")

WILD = None  # the wildcard element of a pattern; other elements are characters


def squeeze(elems):
    """Collapse blank runs to one space, trim the ends."""
    out = []
    for e in elems:
        if e is not WILD and e.isspace():
            e = " "
            if not out or out[-1] == " ":
                continue
        out.append(e)
    while out and out[-1] == " ":
        out.pop()
    return tuple(out)


def format_pattern(fmt, where):
    elems = []
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            elems.append(fmt[i])
            i += 1
            continue
        m = CONV_RE.match(fmt, i)
        if not m:
            raise Error(f"{where}: cannot read the conversion at {fmt[i:i + 8]!r}")
        elems.append("%" if m.group(0) == "%%" else WILD)
        i = m.end()
    return squeeze(elems)


# ---- page side ------------------------------------------------------------

def roff_args(rest):
    """Arguments of a macro line, with roff's quoting."""
    args = []
    i = 0
    while i < len(rest):
        if rest[i] in " \t":
            i += 1
            continue
        if rest[i] == '"':
            i += 1
            arg = []
            while i < len(rest):
                if rest[i] == '"':
                    if i + 1 < len(rest) and rest[i + 1] == '"':
                        arg.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                if rest[i] == "\\" and i + 1 < len(rest):
                    arg.append(rest[i:i + 2])
                    i += 2
                    continue
                arg.append(rest[i])
                i += 1
            args.append("".join(arg))
        else:
            j = i
            while j < len(rest) and rest[j] not in " \t":
                j += 2 if rest[j] == "\\" else 1
            args.append(rest[i:j])
            i = j
    return args


FONT_MACROS = {"I": "I", "B": "B", "R": "R", "IR": "IR", "RI": "RI", "BI": "BI",
               "IB": "IB", "BR": "BR", "RB": "RB", "SM": "R", "SB": "B"}


def tag_source(line, where):
    """A tag line as plain roff text with font escapes."""
    if not line.startswith((".", "'")):
        return line
    m = re.match(r"[.'][ \t]*([A-Za-z]+)[ \t]*(.*)$", line)
    if not m or m.group(1) not in FONT_MACROS:
        raise Error(f"{where}: tag line {line!r} is neither text nor a font macro")
    fonts = FONT_MACROS[m.group(1)]
    args = roff_args(m.group(2))
    if len(fonts) == 1:
        return "\\f" + fonts + " ".join(args) + "\\fR"
    return "".join("\\f" + fonts[k % 2] + a for k, a in enumerate(args)) + "\\fR"


def render_tag(text, where):
    """[(char, italic)] of a tag, escapes rendered."""
    out = []
    font, prev = "R", "R"
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append((c, "I" in font))
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "f":
            if text[i + 2:i + 3] == "(":
                name, i = text[i + 3:i + 5], i + 5
            elif text[i + 2:i + 3] == "[":
                end = text.find("]", i + 3)
                if end < 0:
                    raise Error(f"{where}: unterminated \\f[")
                name, i = text[i + 3:end], end + 1
            else:
                name, i = text[i + 2:i + 3], i + 3
            if name in ("P", ""):
                font, prev = prev, font
            else:
                font, prev = name, font
            continue
        for esc in sorted(ESCAPES, key=len, reverse=True):
            if text.startswith(esc, i + 1):
                for ch in ESCAPES[esc]:
                    out.append((ch, "I" in font))
                i += 1 + len(esc)
                break
        else:
            raise Error(f"{where}: escape {text[i:i + 4]!r} in a tag is not known to this script")
    return out


def tag_pattern(chars):
    """Italic text is literal; each non-blank run in another font is a WILD."""
    elems = []
    for c, italic in chars:
        if italic or c.isspace():
            elems.append(c)
        elif not elems or elems[-1] is not WILD:
            elems.append(WILD)
    return squeeze(elems)


def show(pattern, wild="*"):
    return "".join(wild if e is WILD else e for e in pattern)


def read_tags(page):
    """[(line, pattern, text)] of the message tags of the DIAGNOSTICS section."""
    with open(page, encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = None
    for n, line in enumerate(lines):
        if re.match(r'\.SH\s+"?DIAGNOSTICS"?\s*$', line):
            start = n + 1
            break
    if start is None:
        raise Error(f"{page}: no .SH DIAGNOSTICS section")
    tags = []
    n = start
    while n < len(lines) and not lines[n].startswith(".SH"):
        if re.match(r"\.T[PQ]\b", lines[n]):
            n += 1
            while n < len(lines) and re.match(r'\.\\"', lines[n]):
                n += 1
            where = f"{page}:{n + 1}"
            chars = render_tag(tag_source(lines[n], where), where)
            if any(italic for _, italic in chars):
                pattern = tag_pattern(chars)
                tags.append((n + 1, pattern, show(pattern, "<>")))
        n += 1
    return tags


# ---- matching -------------------------------------------------------------

def matches(msg, tag):
    """Does the tag document the message? See the header."""

    @lru_cache(maxsize=None)
    def m(i, j):
        if i == len(msg) and j == len(tag):
            return True
        if j < len(tag) and tag[j] is WILD:
            if m(i, j + 1):  # the placeholder ends here
                return True
            if i < len(msg) and (msg[i] is WILD or msg[i] != " ") and m(i + 1, j):
                return True
        if i < len(msg) and msg[i] is WILD:
            if m(i + 1, j):  # the conversion ends here
                return True
            if j < len(tag) and tag[j] is not WILD and m(i, j + 1):
                return True
        if (i < len(msg) and j < len(tag) and msg[i] is not WILD and tag[j] is not WILD
                and msg[i] == tag[j]):
            return m(i + 1, j + 1)
        return False

    # Cheap refusal first: the literal text before the first wildcard of
    # both sides must agree.
    k = 0
    while k < len(msg) and k < len(tag) and msg[k] is not WILD and tag[k] is not WILD:
        if msg[k] != tag[k]:
            return False
        k += 1
    return m(0, 0)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    if len(args) != 2 or flags - {"--list", "--strict"}:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    page, srcdir = args
    try:
        messages = find_messages(srcdir)
        if "--list" in flags:
            for path, line, fmt in messages:
                print(f"{path}:{line}: " + ("(not a string literal)" if fmt is None else repr(fmt)))
            return 0
        tags = read_tags(page)
        checked = []
        for path, line, fmt in messages:
            checked.append((path, line, fmt,
                            None if fmt is None else format_pattern(fmt, f"{path}:{line}")))
    except (Error, OSError) as e:
        print(f"diagnostics-check: {e}", file=sys.stderr)
        return 2

    undocumented = 0
    used = set()
    n_allowed = 0
    formats = set()
    for path, line, fmt, pattern in checked:
        if fmt is None:
            print(f"{path}:{line}: message format is not a string literal: cannot check it")
            undocumented += 1
            continue
        formats.add(fmt)
        if fmt in ALLOWLIST:
            n_allowed += 1
            continue
        hits = [tline for tline, tpat, _ in tags if matches(pattern, tpat)]
        used.update(hits)
        if not hits:
            print(f'{path}:{line}: not in {page} DIAGNOSTICS: "{fmt}"')
            undocumented += 1

    stale = [(tline, text) for tline, tpat, text in tags
             if tline not in used and not text.startswith(EXTERNAL_PREFIXES)]
    for tline, text in stale:
        print(f"{page}:{tline}: {'error' if '--strict' in flags else 'warning'}: "
              f"tag matches no message in {srcdir}: {text}", file=sys.stderr)
    for fmt in sorted(set(ALLOWLIST) - formats):
        print(f"diagnostics-check: warning: allowlisted format no longer in the sources: {fmt!r}",
              file=sys.stderr)

    total = len(checked)
    if undocumented or ("--strict" in flags and stale):
        print(f"diagnostics-check: {undocumented} of {total} message calls undocumented", file=sys.stderr)
        return 1
    documented = {fmt for _, _, fmt, _ in checked if fmt not in ALLOWLIST}
    print(f"ok: {total - n_allowed} message calls ({len(documented)} distinct formats) "
          f"documented by {len(tags)} tags; {n_allowed} allowlisted")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
