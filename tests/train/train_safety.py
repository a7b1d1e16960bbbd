#!/usr/bin/python3
"""What `cbrnn train` and `cbrnn run` keep when a run is cut short or its
output cannot be written (docs/RELIABILITY.md: nothing saved is lost):

- an interrupted retrain (SIGINT) with a finished model and --log at their
  names: the model goes beside -o and the log beside --log
  (LOG.interrupted.csv, said); the finished run's log is kept;
- SIGHUP (a closed terminal or ssh session) stops train like SIGTERM: exit
  129, the model so far saved (interrupted=yes), the lock released; under
  nohup (SIGHUP ignored) it stops nothing;
- a signal during the feature pass with --log: exit 130/143, no model, no
  log, no false error, no temporary;
- a final save that fails (-o on a full tmpfs; -o's folder removed before
  Ctrl-C): exit 1, the model and the log in the rescue folder
  ($XDG_STATE_HOME/cbrnn/rescue), said; the earlier -o kept. `run --learn
  --save-model` onto the full tmpfs: likewise its adapted model;
- `run` stopped by SIGHUP: exit 129, its out-dir and --save-model as they
  were, no temporary;
- a corpus of digital silence is refused (exit 2, naming the file); silent
  files among speech still train; eval's table says n/a, not nan, for the
  skill of a silent file.

Signals are sent once the handler is in place (/proc/PID/status SigCgt)
or training is under way (the log has rows), never after a fixed sleep.
The tmpfs cases are skipped where this user may not mount one.

usage: train_safety.py CBRNN WORKDIR SAMPLES_DIR
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

from trainlib import args, report

FAILS = []
SMALL = ["--warmup-steps", "5", "--steps", "5", "--hidden", "16", "--cb", "16", "--seq-len",
         "20", "--batch", "4", "-q"]


def expect(ok, what):
    if not ok:
        FAILS.append(what)
    else:
        print("ok  ", what)


def catches(pid, sig):
    """True once process pid has a handler for sig (or it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        return True
    return False


def wait_for(cond, what):
    deadline = time.time() + 120
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    FAILS.append(f"gave up waiting for {what}")
    return False


def rows(log):
    """The rows so far in the temporary of log (0 before it exists)."""
    tmp = glob.glob(log + ".tmp.*")
    return sum(1 for _ in open(tmp[0])) if tmp else 0


def log_rows(log):
    """True once the temporary of log has at least 3 rows (training under way)."""
    return rows(log) >= 3


def metadata(cbrnn, model):
    """The metadata of model as `cbrnn info --json` gives it."""
    return json.loads(subprocess.run([cbrnn, "info", model, "--json"], capture_output=True,
                                     text=True).stdout)["metadata"]


def start(cmd, env=None):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def sox(*a):
    subprocess.run(["sox", *a], check=True)


def temporaries(folder):
    return [f for f in os.listdir(folder) if ".tmp." in f]


def interrupted_retrain(cbrnn, j, inputs):
    """A finished model and log, then a retrain stopped by SIGINT."""
    m, log = j("lg.safetensors"), j("lg.csv")
    subprocess.run([cbrnn, "train", *SMALL, "--eval-every", "2", "--log", log, "-o", m, *inputs],
                   check=True, capture_output=True)
    before = open(log).read(), open(m, "rb").read()
    p = start([cbrnn, "train", *SMALL, "--steps", "100000000", "--log", log, "-o", m, *inputs])
    wait_for(lambda: log_rows(log), "the retrain's log rows")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    aside = j("lg.interrupted.csv")
    expect(p.returncode == 130, f"interrupted retrain: exit {p.returncode} ({err.strip()})")
    expect(open(log).read() == before[0] and open(m, "rb").read() == before[1],
           "interrupted retrain: the finished run's model and log kept")
    expect(os.path.exists(j("lg.interrupted.safetensors")) and os.path.exists(aside) and
           open(aside).read().count("\n") >= 3,
           "interrupted retrain: model and log beside them")
    expect("lg.interrupted.csv" in err, f"interrupted retrain: says where the log went: {err!r}")


def sighup(cbrnn, j, inputs):
    """SIGHUP during training: saved, exit 129, the lock released."""
    m, log = j("hup.safetensors"), j("hup.csv")
    p = start([cbrnn, "train", *SMALL, "--steps", "100000000", "--log", log, "-o", m, *inputs])
    wait_for(lambda: log_rows(log), "the log rows")
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=120)
    expect(p.returncode == 129, f"SIGHUP: exit {p.returncode}, expected 129 ({err.strip()})")
    md = metadata(cbrnn, m) if os.path.exists(m) else {}
    expect(md.get("interrupted") == "yes", "SIGHUP: the model so far saved, interrupted=yes")
    expect(os.path.exists(log), "SIGHUP: its log in place")
    expect(not os.path.exists(m + ".lock"), "SIGHUP: no lock file left")
    r = subprocess.run([cbrnn, "train", *SMALL, "-o", m, *inputs], capture_output=True, text=True)
    expect(r.returncode == 0, f"SIGHUP: the lock released (next train: {r.stderr.strip()})")


def ignored_sighup(cbrnn, j, inputs):
    """Under nohup (SIGHUP ignored when train starts) a hangup stops nothing:
    the caller's choice is kept; Ctrl-C still stops it (exit 130)."""
    m, log = j("nohup.safetensors"), j("nohup.csv")
    p = subprocess.Popen([cbrnn, "train", *SMALL, "--steps", "100000000", "--log", log, "-o", m,
                          *inputs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    wait_for(lambda: log_rows(log), "the log rows")
    n = rows(log)
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: p.poll() is not None or rows(log) >= n + 3, "rows after the hangup")
    expect(p.poll() is None, f"nohup: a hangup stopped train (exit {p.returncode})")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    expect(p.returncode == 130, f"nohup: Ctrl-C: exit {p.returncode}, expected 130 ({err.strip()})")


def stop_in_features(cbrnn, j, samples):
    """SIGINT and SIGTERM while the features are computed, with --log."""
    many = sorted(glob.glob(os.path.join(samples, "*.wav")))
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        m, log = j("fp.safetensors"), j("fp.csv")
        with open(log, "w") as f:
            f.write("an earlier run's log\n")
        p = start([cbrnn, "train", *SMALL, "--log", log, "--speed-perturb", "0.8,0.9,1.1,1.2",
                   "--cache-dir", j("."), "-o", m, *many])
        wait_for(lambda: catches(p.pid, sig), "the signal handler")
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
        if "interrupted while computing features" not in err:
            print(f"skip the feature-pass case ({sig.name}): the features were done first")
            continue
        expect(p.returncode == code and "cannot" not in err and "--log" not in err,
               f"{sig.name} in the features: exit {p.returncode}, expected {code}: {err!r}")
        expect(not os.path.exists(m) and open(log).read() == "an earlier run's log\n" and
               not temporaries(j(".")), f"{sig.name} in the features: nothing written or left")


def full_disk(cbrnn, j, inputs, model):
    """-o, then run's --save-model, on a full tmpfs: rescue copies."""
    full = j("full")
    os.makedirs(full)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", full],
                      capture_output=True).returncode:
        print("skip the full-disk cases: cannot mount a tmpfs here")
        return
    try:
        env = dict(os.environ, XDG_STATE_HOME=j("state"))
        rescue = j("state", "cbrnn", "rescue")
        out, log = os.path.join(full, "old.safetensors"), j("full.csv")
        earlier = open(j("lg.safetensors"), "rb").read()  # interrupted_retrain's
        with open(out, "wb") as f:
            f.write(earlier)
        try:  # the rest of the tmpfs filled
            with open(os.path.join(full, "pad"), "wb", buffering=0) as f:
                while f.write(b"\0" * 4096):
                    pass
        except OSError:
            pass
        r = subprocess.run([cbrnn, "train", *SMALL, "--cache-dir", j("."), "--log", log,
                            "-o", out, *inputs], capture_output=True, text=True, env=env)
        saved = glob.glob(os.path.join(rescue, "*-old.safetensors"))
        logs = glob.glob(os.path.join(rescue, "*-full.csv"))
        expect(r.returncode == 1 and "rescue copy" in r.stderr and len(saved) == 1 and
               saved[0] in r.stderr, f"train on a full disk: rescued, said: {r.stderr!r}")
        expect(len(logs) == 1 and open(logs[0]).read().count("\n") >= 2 and
               not os.path.exists(log), "train on a full disk: the log beside the rescue copy")
        expect(len(saved) == 1 and subprocess.run([cbrnn, "eval", saved[0], inputs[0]],
                                                  capture_output=True).returncode == 0,
               "train on a full disk: the rescue copy evaluates")
        md = metadata(cbrnn, saved[0]) if saved else {}
        expect(not [k for k in md if k.startswith("adapted_")],
               f"train on a full disk: the rescue copy says it was adapted: {md}")
        expect(open(out, "rb").read() == earlier and
               not temporaries(full), "train on a full disk: the earlier -o kept, no temporary")
        r = subprocess.run([cbrnn, "run", "--model", model, "--out-dir", j("rout"), "--learn",
                            "--save-model", os.path.join(full, "adapt.safetensors"), inputs[0]],
                           capture_output=True, text=True, env=env)
        saved = glob.glob(os.path.join(rescue, "*-adapt.safetensors"))
        expect(r.returncode == 1 and len(saved) == 1 and saved[0] in r.stderr,
               f"run --save-model on a full disk: rescued, said: {r.stderr!r}")
        md = metadata(cbrnn, saved[0]) if saved else {}
        expect(md.get("adapted_by") == "cbrnn run",
               f"run --save-model on a full disk: the rescue copy's adapted_by: {md}")
    finally:
        subprocess.run(["umount", full])


def folder_gone(cbrnn, j, inputs):
    """-o's folder (and the log's) removed during training, then Ctrl-C."""
    import shutil
    env = dict(os.environ, XDG_STATE_HOME=j("state2"))
    sub = j("sub")
    os.makedirs(sub)
    log = os.path.join(sub, "gone.csv")
    p = start([cbrnn, "train", *SMALL, "--steps", "100000000", "--cache-dir", j("."),
               "--log", log, "-o", os.path.join(sub, "gone.safetensors"), *inputs], env=env)
    wait_for(lambda: log_rows(log), "the log rows")
    shutil.rmtree(sub)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    rescue = j("state2", "cbrnn", "rescue")
    saved = glob.glob(os.path.join(rescue, "*-gone.safetensors"))
    logs = glob.glob(os.path.join(rescue, "*-gone.csv"))
    expect(p.returncode == 1 and len(saved) == 1 and saved[0] in err and len(logs) == 1 and
           open(logs[0]).read().count("\n") >= 3,
           f"-o's folder removed, Ctrl-C: model and log rescued: {err!r}")


def run_sighup(cbrnn, j, samples, model):
    """run stopped by SIGHUP: exit 129, D and --save-model untouched."""
    d = j("hupdir")
    os.makedirs(d)
    with open(os.path.join(d, "frames.csv"), "w") as f:
        f.write("earlier\n")
    long_input = os.path.join(samples, "real_it_carlo.wav")
    p = start([cbrnn, "run", "--model", model, "--out-dir", d, "--learn", "--save-model",
               j("hupadapt.safetensors"), long_input, long_input, long_input])
    wait_for(lambda: catches(p.pid, signal.SIGHUP) and temporaries(d), "run's handler")
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0:
        print("skip run's SIGHUP case: the run finished first")
        return
    expect(p.returncode == 129 and open(os.path.join(d, "frames.csv")).read() == "earlier\n"
           and not temporaries(d) and not os.path.exists(j("hupadapt.safetensors")),
           f"run SIGHUP: exit {p.returncode}, D as it was: {err.strip()}")


def silence(cbrnn, j, inputs):
    """A silent corpus refused; silent files among speech train; eval says n/a."""
    sil = j("silent.wav")
    sox("-n", "-r", "16000", "-c", "1", sil, "trim", "0", "2")
    r = subprocess.run([cbrnn, "train", *SMALL, "-o", j("sil.safetensors"), sil],
                       capture_output=True, text=True)
    expect(r.returncode == 2 and "silent.wav" in r.stderr and "vary" in r.stderr and
           not os.path.exists(j("sil.safetensors")),
           f"a silent corpus refused: exit {r.returncode}: {r.stderr.strip()}")
    m = j("mixed.safetensors")
    r = subprocess.run([cbrnn, "train", *SMALL, "-o", m, sil, *inputs, "--val-files",
                        inputs[-1]], capture_output=True, text=True)
    expect(r.returncode == 0, f"silence among speech still trains: {r.stderr.strip()}")
    r = subprocess.run([cbrnn, "eval", m, sil, inputs[0]], capture_output=True, text=True)
    row = [ln for ln in r.stdout.splitlines() if ln.startswith(sil)]
    expect(r.returncode == 0 and "nan" not in r.stdout and row and row[0].split()[-1] == "n/a"
           and "persistence loss is 0" in r.stdout, f"eval's table on silence: {r.stdout!r}")
    # a teacher that is its input: the persistence loss is 0, skill n/a (it said nan)
    pairs = j("same_pairs.txt")
    with open(pairs, "w") as f:
        f.write("".join(f"{p}\t{p}\n" for p in inputs))
    r = subprocess.run([cbrnn, "train", *[a for a in SMALL if a != "-q"], "--target", "map",
                        "--pairs", pairs, "-o", j("same.safetensors")], capture_output=True,
                       text=True)
    out = r.stdout + r.stderr
    expect(r.returncode == 0 and "skill n/a" in out and "nan" not in out,
           f"map onto the input itself: skill n/a: {out!r}")


def main():
    cbrnn, work, samples = args()

    def j(*p):
        return os.path.join(work, *p)

    inputs = []
    for name, src in (("a1", "voiceA_us_male_1"), ("a2", "voiceA_us_male_2"),
                      ("b1", "voiceB_gb_female_1")):
        inputs.append(j(name + ".wav"))
        sox(os.path.join(samples, src + ".wav"), "-r", "16000", inputs[-1], "trim", "0", "2")
    model = os.path.join(samples, "default.safetensors")
    interrupted_retrain(cbrnn, j, inputs)
    sighup(cbrnn, j, inputs)
    ignored_sighup(cbrnn, j, inputs)
    stop_in_features(cbrnn, j, samples)
    full_disk(cbrnn, j, inputs, model)
    folder_gone(cbrnn, j, inputs)
    run_sighup(cbrnn, j, samples, model)
    silence(cbrnn, j, inputs)
    report(FAILS, "ok")


if __name__ == "__main__":
    main()
