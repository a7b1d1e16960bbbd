#!/usr/bin/python3
"""corpus_manifest.py: the manifest of the speech corpus scripts/corpus.sh
unpacked into a cache folder.

For each known Debian package it picks the spoken recordings out of the
unpacked tree (rules below, from the packages' real file layouts), reads
every one through libsndfile (the library `cbrnn` itself reads audio with),
drops what libsndfile cannot read, what holds no audio, and content
duplicates, and writes

  CACHE/manifest.tsv  path package language group speaker seconds rate channels sha1
  CACHE/skipped.tsv   path package reason

Paths are relative to CACHE. language: ISO 639 code of the recording
(locale folders such as pt_BR or en_GB fold into pt and en); group: the
language's family as the splits use it (germanic, romance, slavic, other);
speaker: the speaker group, "source:voice", one per voice the package's
paths or documentation tell apart (see docs/CORPUS.md). sha1: of the
decoded 16-bit samples and the rate, so the same recording in two
containers counts once.

  corpus_manifest.py --dir CACHE --packages p1,p2,...
  corpus_manifest.py --check-package NAME    (exit 2 if NAME has no rules)
"""
import argparse
import ctypes
import ctypes.util
import hashlib
import os
import re
import sys
from multiprocessing import Pool

import numpy as np

# Language families used by the splits. Baltic, Hellenic, Uralic, Celtic,
# Semitic, Dravidian and Bantu languages share the group "other".
GROUPS = {
    "germanic": ["en", "de", "nl", "da", "nb", "nn", "nds", "sv"],
    "romance": ["fr", "es", "it", "pt", "ca", "ro", "gl", "wa"],
    "slavic": ["ru", "uk", "be", "bg", "cs", "sl", "sr"],
    "other": ["el", "lt", "ar", "he", "hu", "ml", "tn", "ga", "fi"],
}
GROUP_OF = {lang: g for g, langs in GROUPS.items() for lang in langs}

# Plausible recording rates. klettres-data's Danish alphabet files claim
# 128000 Hz; their true rate is not recorded anywhere, so they are skipped.
MIN_RATE, MAX_RATE = 8000, 96000

AUDIO_EXT = (".ogg", ".oga", ".opus", ".wav", ".flac")


def language_of(locale):
    """'pt_BR' -> 'pt', 'sr@latin' -> 'sr', 'en' -> 'en'."""
    return re.split(r"[_@.]", locale)[0].lower()


# --- per-package rules: rel path (inside the unpacked or decoded tree) ->
# (locale, speaker) or a string saying why the file is not speech or not
# taken; None for files that are not audio at all.

TUX_DESC = re.compile(r"_desc(?:_([A-Za-z]{2,3}(?:_[A-Z]{2})?(?:@\w+)?))?\.(?:ogg|wav)(?:\.ogg)?$")


def rule_tuxpaint(rel):
    """usr/share/tuxpaint/stamps/**/NAME_desc[_LOCALE].ogg: the spoken
    description of a stamp; no locale means English. Other sounds of the
    package are sound effects. One main voice per language (upstream's
    changelog names them), so speaker = language folder."""
    if not rel.startswith("usr/share/tuxpaint/stamps/") or not rel.endswith((".ogg", ".wav")):
        return None
    m = TUX_DESC.search(rel)
    if not m:
        return "not a spoken description (sound effect)"
    locale = m.group(1) or "en"
    return locale, "tuxpaint:" + locale


def rule_klettres(rel):
    """usr/share/klettres/LOCALE/{alpha,syllab}/*.ogg: letters and
    syllables, one voice per locale folder."""
    m = re.match(r"usr/share/klettres/([^/]+)/(alpha|syllab)/[^/]+$", rel)
    if not m or not rel.endswith(AUDIO_EXT):
        return None
    return m.group(1), "klettres:" + m.group(1)


def rule_ktuberling(rel):
    """usr/share/ktuberling/sounds/LOCALE/*: words; the sr@* folders are
    copies of sr (other scripts of the same recordings)."""
    m = re.match(r"usr/share/ktuberling/sounds/([^/]+)/[^/]+$", rel)
    if not m or not rel.endswith(AUDIO_EXT):
        return None
    if "@" in m.group(1):
        return "copy of another locale folder (%s)" % m.group(1)
    return m.group(1), "ktuberling:" + m.group(1)


def rule_asterisk(rel):
    """usr/share/asterisk/sounds/ll_CC_g_Name/**/*.wav (decoded G.722):
    telephone prompts; the folder names the voice (en_US_f_Allison and
    es_MX_f_Allison are the same speaker). silence/ and beeps are not
    speech."""
    m = re.match(r"usr/share/asterisk/sounds/([a-z]{2})_([A-Z]{2})_([mf])_([^/]+)/(.+)$", rel)
    if not m or not rel.endswith(".wav"):
        return None
    name = m.group(5)
    if name.startswith("silence/") or re.search(r"(^|/)(beep\w*|\w*-2tone)\.wav$", name):
        return "not speech (silence or tone)"
    return m.group(1) + "_" + m.group(2), "asterisk:" + m.group(4)


RULES = {
    "tuxpaint-stamps-default": ("pkg", rule_tuxpaint),
    "klettres-data": ("pkg", rule_klettres),
    "ktuberling-data": ("pkg", rule_ktuberling),
}
for _ll in ("en", "es", "fr", "it", "ru"):
    RULES["asterisk-core-sounds-%s-g722" % _ll] = ("decoded", rule_asterisk)


# --- libsndfile through ctypes (no Python binding is packaged in Debian 12
# for /usr/bin/python3 without pip).

class SfInfo(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int),
                ("channels", ctypes.c_int), ("format", ctypes.c_int),
                ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]


_sf = None


def sndfile():
    global _sf
    if _sf is None:
        lib = ctypes.CDLL(ctypes.util.find_library("sndfile") or "libsndfile.so.1")
        lib.sf_open.restype = ctypes.c_void_p
        lib.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(SfInfo)]
        lib.sf_close.argtypes = [ctypes.c_void_p]
        lib.sf_strerror.restype = ctypes.c_char_p
        lib.sf_strerror.argtypes = [ctypes.c_void_p]
        lib.sf_readf_short.restype = ctypes.c_int64
        lib.sf_readf_short.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        _sf = lib
    return _sf


def probe(path):
    """(rate, channels, frames, sha1, None) or (.., reason) for a file to skip."""
    sf = sndfile()
    info = SfInfo()
    h = sf.sf_open(path.encode(), 0x10, ctypes.byref(info))  # SFM_READ
    if not h:
        why = sf.sf_strerror(None).decode(errors="replace")
        return 0, 0, 0, "", "libsndfile cannot read it: " + why
    try:
        rate, ch = info.samplerate, info.channels
        if rate < MIN_RATE or rate > MAX_RATE:
            return rate, ch, info.frames, "", "implausible sample rate %d Hz" % rate
        digest = hashlib.sha1(str(rate).encode())
        total, nonzero = 0, False
        buf = np.empty((65536, ch), dtype=np.int16)
        while True:
            got = sf.sf_readf_short(h, buf.ctypes.data, 65536)
            if got <= 0:
                break
            block = buf[:got]
            digest.update(block.tobytes())
            nonzero = nonzero or bool(np.any(block))
            total += got
        if total == 0:
            return rate, ch, 0, "", "no audio (0 frames)"
        if not nonzero:
            return rate, ch, total, "", "no audio (digital silence)"
        return rate, ch, total, digest.hexdigest(), None
    finally:
        sf.sf_close(h)


def candidates(cache, package):
    """[(rel path to CACHE, locale, speaker)] and [(rel, reason)] skipped."""
    where, rule = RULES[package]
    root = os.path.join(cache, where, package)
    if not os.path.isdir(root):
        raise SystemExit("corpus_manifest: %s: not unpacked (run scripts/corpus.sh)" % root)
    take, skip = [], []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            full = os.path.join(d, f)
            rel = os.path.relpath(full, root)
            r = rule(rel)
            if r is None or os.path.islink(full):
                continue
            relc = os.path.relpath(full, cache)
            if "\t" in relc or "\n" in relc:
                skip.append((relc, "tab or newline in the file name"))
            elif isinstance(r, str):
                skip.append((relc, r))
            else:
                take.append((relc, r[0], r[1]))
    return take, skip


def probe_rel(args):
    cache, rel = args
    return probe(os.path.join(cache, rel))


def build(cache, packages, jobs):
    rows, skipped = [], []
    todo = []
    for p in packages:
        take, skip = candidates(cache, p)
        skipped += [(rel, p, why) for rel, why in skip]
        todo += [(rel, p, loc, spk) for rel, loc, spk in take]
    with Pool(jobs) as pool:
        probes = pool.map(probe_rel, [(cache, t[0]) for t in todo], chunksize=16)
    seen = {}
    for (rel, p, loc, spk), (rate, ch, frames, sha, why) in zip(todo, probes):
        if why:
            skipped.append((rel, p, why))
            continue
        if sha in seen:
            skipped.append((rel, p, "duplicate of " + seen[sha]))
            continue
        seen[sha] = rel
        lang = language_of(loc)
        rows.append((rel, p, lang, GROUP_OF.get(lang, "other"), spk,
                     "%.3f" % (frames / rate), str(rate), str(ch), sha))
    return rows, skipped


def write_tsv(path, header, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", help="cache folder scripts/corpus.sh filled")
    ap.add_argument("--packages", help="comma-separated packages")
    ap.add_argument("--check-package", help="exit 2 unless this package has rules")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    if a.check_package:
        if a.check_package not in RULES:
            print("corpus: no rules for package '%s'; known: %s" %
                  (a.check_package, ", ".join(sorted(RULES))), file=sys.stderr)
            sys.exit(2)
        return
    if not a.dir or not a.packages:
        ap.error("--dir and --packages are required")
    packages = [p for p in a.packages.split(",") if p]
    for p in packages:
        if p not in RULES:
            ap.error("no rules for package '%s'" % p)
    rows, skipped = build(a.dir, packages, a.jobs)
    write_tsv(os.path.join(a.dir, "manifest.tsv"),
              ["path", "package", "language", "group", "speaker", "seconds", "rate",
               "channels", "sha1"], rows)
    write_tsv(os.path.join(a.dir, "skipped.tsv"), ["path", "package", "reason"], skipped)
    secs = sum(float(r[5]) for r in rows)
    print("corpus: manifest %s: %d files, %.1f min, %d languages, %d speaker groups; "
          "%d skipped (see skipped.tsv)" % (
              os.path.join(a.dir, "manifest.tsv"), len(rows), secs / 60,
              len({r[2] for r in rows}), len({r[4] for r in rows}), len(skipped)))


if __name__ == "__main__":
    main()
