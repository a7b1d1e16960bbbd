# slurmlib.sh: a throwaway single-node Slurm cluster for tests, sourced by
# test scripts: munged, slurmctld and slurmd (Debian 12: slurm 22.05) run
# as this user in the foreground of background jobs, with their key,
# socket, config, state, logs and pid files in one folder and ports picked
# free at start, so a system Slurm or munge on the machine is left alone.
#   slurm_start DIR   starts it (DIR must exist); exports SLURM_CONF; 0 once
#                     the node is idle, 1 (with the daemons' logs) otherwise
#   slurm_stop        stops exactly the processes slurm_start started
# Settings found to work on this kind of machine (issue 12):
# proctrack/linuxproc and task/none (no cgroups needed), cons_tres with
# CR_Core, no accounting (so no sacct: read states with scontrol),
# DependencyParameters=kill_invalid_depend (22.05 ignores it under
# SchedulerParameters, and a merge behind a failed array would hang), and
# batch_sched_delay=0 (else array tasks start about 3 s apart). munged
# refuses a socket folder that others cannot traverse, so every folder
# above the socket is made world-executable.

SLURM_PIDS=""

# A TCP port nothing listens on (bound and released: free at this moment).
slurm_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slurm_start() {
  SLURM_DIR=$1
  for c in munged mungekey slurmctld slurmd sbatch scontrol; do
    command -v $c >/dev/null 2>&1 || [ -x /usr/sbin/$c ] ||
      { echo "slurmlib: $c not installed (scripts/deps.sh installs it)"; return 1; }
  done
  PATH=$PATH:/usr/sbin
  d=$SLURM_DIR
  while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null; d=$(dirname "$d"); done
  mkdir -p "$SLURM_DIR/munge" "$SLURM_DIR/state" "$SLURM_DIR/spool"
  chmod 755 "$SLURM_DIR" "$SLURM_DIR/munge"
  mungekey -c -k "$SLURM_DIR/munge/munge.key" >/dev/null 2>&1 ||
    { echo "slurmlib: mungekey failed"; return 1; }
  SLURM_MUNGE_SOCKET=$SLURM_DIR/munge/munge.socket
  munged -F --force -S "$SLURM_MUNGE_SOCKET" --key-file "$SLURM_DIR/munge/munge.key" \
    --pid-file "$SLURM_DIR/munge/munged.pid" --log-file "$SLURM_DIR/munge/munged.log" \
    --seed-file "$SLURM_DIR/munge/munged.seed" >"$SLURM_DIR/munge/out" 2>&1 &
  SLURM_PIDS="$SLURM_PIDS $!"
  i=0
  while [ ! -S "$SLURM_MUNGE_SOCKET" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  [ -S "$SLURM_MUNGE_SOCKET" ] || { echo "slurmlib: munged did not start:"; cat "$SLURM_DIR/munge/out" "$SLURM_DIR/munge/munged.log" 2>/dev/null; return 1; }
  user=$(id -un)
  cat >"$SLURM_DIR/slurm.conf" <<CONF
ClusterName=cbrnntest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(slurm_free_port)
SlurmdPort=$(slurm_free_port)
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SLURM_MUNGE_SOCKET
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
DependencyParameters=kill_invalid_depend
SchedulerParameters=batch_sched_delay=0
SchedulerType=sched/backfill
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  slurmctld -D -i -f "$SLURM_CONF" >"$SLURM_DIR/slurmctld.out" 2>&1 &
  SLURM_PIDS="$SLURM_PIDS $!"
  slurmd -D -N localhost -f "$SLURM_CONF" >"$SLURM_DIR/slurmd.out" 2>&1 &
  SLURM_PIDS="$SLURM_PIDS $!"
  i=0
  while [ $i -lt 300 ]; do
    state=$(sinfo -h -N -o %t 2>/dev/null)
    case $state in idle*) return 0 ;; esac
    sleep 0.1; i=$((i + 1))
  done
  echo "slurmlib: the node did not become idle (state '$state'):"
  tail -20 "$SLURM_DIR/slurmctld.log" "$SLURM_DIR/slurmd.log" "$SLURM_DIR"/*.out 2>/dev/null
  return 1
}

slurm_stop() {
  for p in $SLURM_PIDS; do kill "$p" 2>/dev/null; done
  for p in $SLURM_PIDS; do
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$p" 2>/dev/null
  done
  SLURM_PIDS=""
}
