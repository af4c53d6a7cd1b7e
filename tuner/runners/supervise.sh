# The supervisor of one local trial: sh supervise.sh STATUS PIDFILE DIR COMMAND [ARG...]
# tuner/runners/supervisor.py says what it guarantees. Everything here is a builtin of the
# shell: the command's fork+exec is the only process it starts.

# Survive the group's SIGTERM/SIGINT to record the command's death. A trap with a handler
# (unlike `trap ''`, which children would inherit as SIG_IGN) leaves the command the default
# action, and a foreground command is waited for before the handler runs. A signal that comes
# before the command starts is kept: the command then does not run, as if killed at once. (One
# that comes between the fork and the exec of the command is lost: see supervisor.py.)
sig=
trap 'sig=${sig:-15}' TERM
trap 'sig=${sig:-2}' INT
status=$1 pidfile=$2 dir=$3
shift 3

# "<pid> <start time>" (field 22 of /proc/<pid>/stat, after a command name that may hold
# spaces or parentheses), in one write before the command runs: a reader finds the file empty
# or whole (a rename would cost an `mv`, as much CPU as the rest of this script).
read -r stat < /proc/$$/stat
started() { start=${20}; }
# shellcheck disable=SC2086  # split on purpose: the fields after the command name
started ${stat##*) }
printf '%s %s\n' $$ "$start" > "$pidfile" || exit 1

# In the working directory DIR (the runner's posix_spawn cannot change it).
if [ -n "$sig" ]; then
  code=$((-sig))
elif cd -- "$dir"; then
  "$@" < /dev/null
  code=$?
else
  code=127
fi
# A command killed by signal N reports 128+N in the shell: written as -N (as os.waitpid says).
if [ "$code" -gt 128 ] && [ "$code" -le 192 ]; then code=$((128 - code)); fi
# One write, before this process ends; the runner reads it only after that.
printf '%s\n' "$code" > "$status"
# The trial ends with its command: whatever it left in this process group goes, this shell too.
kill -KILL 0
