# The supervisor of one local trial: sh supervise.sh STATUS PIDFILE COMMAND [ARG...]
# tuner/runners/supervisor.py says what it guarantees. Everything here is a builtin of the
# shell: the command's fork+exec is the only process it starts.

# Survive the group's SIGTERM/SIGINT to record the command's death. A trap with a handler
# (unlike `trap ''`, which children would inherit as SIG_IGN) leaves the command the default
# action, and a foreground command is waited for before the handler runs.
trap : TERM INT
status=$1 pidfile=$2
shift 2

# "<pid> <start time>" (field 22 of /proc/<pid>/stat, after a command name that may hold
# spaces or parentheses), in one write before the command runs: a reader finds the file empty
# or whole (a rename would cost an `mv`, as much CPU as the rest of this script).
read -r stat < /proc/$$/stat
started() { start=${20}; }
# shellcheck disable=SC2086  # split on purpose: the fields after the command name
started ${stat##*) }
printf '%s %s\n' $$ "$start" > "$pidfile" || exit 1

"$@" < /dev/null
code=$?
# A command killed by signal N reports 128+N in the shell: written as -N (as os.waitpid says).
if [ "$code" -gt 128 ] && [ "$code" -le 192 ]; then code=$((128 - code)); fi
# One write, before this process ends; the runner reads it only after that.
printf '%s\n' "$code" > "$status"
# The trial ends with its command: whatever it left in this process group goes, this shell too.
kill -KILL 0
