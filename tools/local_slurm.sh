#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, to try the cluster profile
# (profiles/slurm) and run its tests (tests/e2e/test_slurm.py) without a cluster.
#
#   bash tools/local_slurm.sh start    # install if missing, start, print SLURM_CONF
#   bash tools/local_slurm.sh status   # exit 0 if running, 3 if not
#   bash tools/local_slurm.sh stop     # cancel jobs, stop the daemons it started
#
# Then, in every shell that talks to the cluster:
#   export SLURM_CONF=<the path printed by start>
#
# Needs root on Debian or Ubuntu: the packages (slurm-wlm, munge) come from apt when
# missing, and slurmd runs as root. One partition, `debug`, with every core and 90% of
# the memory of this machine; no cgroups, no accounting database (slurmdbd), so `sacct`
# does not work and Snakemake's Slurm executor must use `squeue` for job states.
#
# Everything lives under REGSIM_SLURM_DIR (default: $TMPDIR/regsim-slurm or
# /tmp/regsim-slurm): slurm.conf, state, spool, logs, pid files, and a private munged
# with its own key and socket, so a munged already running here is left alone.
# Finished jobs are listed in $REGSIM_SLURM_DIR/log/jobcomp.txt.
#
# One exception: /etc/slurm/slurm.conf becomes a symlink to our slurm.conf while the
# cluster runs. Inside a job, the executor's job step removes every SLURM_* variable
# (SLURM_CONF included) before its nested `srun`, which then only finds the built-in
# default path. The script refuses to start if /etc/slurm/slurm.conf is a real file or
# a link to another live configuration, and `stop` removes only its own link.
#
# start is idempotent (a running cluster is left as it is); stop signals only the PIDs
# in its own pid files. Starting takes about a second once the packages are installed
# (installing them takes about 10 s).
set -euo pipefail

BASE=${REGSIM_SLURM_DIR:-${TMPDIR:-/tmp}/regsim-slurm}
BASE=$(realpath -m "$BASE")
CONF=$BASE/slurm.conf
RUN=$BASE/run
LOG=$BASE/log
MUNGE_DIR=$BASE/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MUNGE_PID=$MUNGE_DIR/munged.pid
SYSTEM_CONF=/etc/slurm/slurm.conf
export SLURM_CONF=$CONF

die() {
  echo "local_slurm: $*" >&2
  exit 1
}
say() { echo "local_slurm: $*"; }

pid_alive() { # pid file -> true if the process it names is running
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (slurmd runs as root, packages come from apt)"
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  say "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm munge >/dev/null
}

check_system_conf() {
  # Our link, or a dangling link left by a crashed run: ours to (re)place.
  if [ -L "$SYSTEM_CONF" ]; then
    local target
    target=$(readlink "$SYSTEM_CONF")
    if [ "$target" != "$CONF" ] && [ -e "$SYSTEM_CONF" ]; then
      die "$SYSTEM_CONF links to $target, not to $CONF; stop that cluster first"
    fi
  elif [ -e "$SYSTEM_CONF" ]; then
    die "$SYSTEM_CONF exists: this machine has a real Slurm configuration; not touching it"
  fi
}

write_conf() {
  local node cpus mem
  node=$(hostname -s) # slurmd registers under this name
  cpus=$(nproc)
  # a little below the physical memory, or slurmd reports less and the node is drained
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  mkdir -p "$BASE"/{state,spool} "$RUN" "$LOG"
  cat >"$CONF" <<EOF
# Written by tools/local_slurm.sh: single-node test cluster, everything under $BASE.
ClusterName=regsim-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: processes tracked through /proc; task/affinity binds each job step to its
# CPUs (with task/none, the executor's srun --cpu-bind=q warns in every job log)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
# no accounting database: sacct cannot report jobs, squeue must
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
# finished jobs stay visible to squeue for 10 minutes
MinJobAge=600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
EOF
  mkdir -p "$(dirname "$SYSTEM_CONF")"
  ln -sfn "$CONF" "$SYSTEM_CONF"
}

munge_ok() {
  munge --socket="$MUNGE_SOCKET" -n </dev/null 2>/dev/null |
    unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1
}

start_munge() {
  if pid_alive "$MUNGE_PID" && munge_ok; then return; fi
  mkdir -p "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR" # clients need to reach the socket; the key stays 0600
  if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    head -c 1024 /dev/urandom >"$MUNGE_DIR/munge.key"
  fi
  chmod 0600 "$MUNGE_DIR/munge.key"
  chown -R munge:munge "$MUNGE_DIR"
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  # daemonizes and writes its pid file
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCKET" \
    --key-file="$MUNGE_DIR/munge.key" --pid-file="$MUNGE_PID" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
  for _ in $(seq 50); do munge_ok && return; sleep 0.1; done
  tail -n 20 "$MUNGE_DIR/munged.log" >&2 || true
  die "munged did not answer on $MUNGE_SOCKET"
}

start_slurm() {
  if ! pid_alive "$RUN/slurmctld.pid"; then
    /usr/sbin/slurmctld -c -f "$CONF" # -c: a fresh cluster, no saved jobs
  fi
  for _ in $(seq 100); do
    scontrol ping 2>/dev/null | grep -q UP && break
    sleep 0.1
  done
  scontrol ping 2>/dev/null | grep -q UP || {
    tail -n 20 "$LOG/slurmctld.log" >&2 || true
    die "slurmctld did not come up"
  }
  if ! pid_alive "$RUN/slurmd.pid"; then
    /usr/sbin/slurmd -f "$CONF"
  fi
  for _ in $(seq 150); do
    node_ready && return
    sleep 0.2
  done
  sinfo >&2 || true
  tail -n 20 "$LOG/slurmd.log" >&2 || true
  die "the node did not become idle"
}

node_ready() {
  sinfo -h -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)$'
}

running() {
  pid_alive "$MUNGE_PID" && pid_alive "$RUN/slurmctld.pid" && pid_alive "$RUN/slurmd.pid" &&
    [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$CONF" ] && node_ready
}

stop_pid() { # pid file, name
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $2 (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$2 (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$1"
}

stop_all() {
  # Cancel what still runs, so no job step outlives slurmd.
  if pid_alive "$RUN/slurmctld.pid"; then
    local jobs
    jobs=$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      say "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 100); do
        [ -z "$(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
  fi
  stop_pid "$RUN/slurmd.pid" slurmd
  stop_pid "$RUN/slurmctld.pid" slurmctld
  stop_pid "$MUNGE_PID" munged
  if [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$CONF" ]; then
    rm -f "$SYSTEM_CONF"
  fi
}

case "${1:-}" in
start)
  need_root
  if running; then
    say "already running"
  else
    check_system_conf
    install_packages
    # a partial start (e.g. slurmd died) is restarted from scratch
    if pid_alive "$RUN/slurmctld.pid" || pid_alive "$RUN/slurmd.pid"; then
      stop_all >/dev/null
    fi
    write_conf
    start_munge
    start_slurm
    say "running: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %t')"
  fi
  echo "export SLURM_CONF=$CONF"
  ;;
stop)
  need_root
  stop_all
  ;;
status)
  if running; then
    for f in "$MUNGE_PID" "$RUN/slurmctld.pid" "$RUN/slurmd.pid"; do
      ps -o pid=,comm= -p "$(cat "$f")"
    done
    sinfo
    echo "export SLURM_CONF=$CONF"
  else
    say "not running (base directory $BASE)"
    exit 3
  fi
  ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
