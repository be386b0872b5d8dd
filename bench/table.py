"""Turns bench/compare.sh's result lines ("daemon transport measurement value") into a Markdown
table: one row a measurement, one column a daemon and transport, and nodekitd/buildkitd ratios
over tcp where both daemons were measured."""
import sys

values = {}
columns = []
rows = []
for line in sys.stdin:
    daemon, transport, name, value = line.split()
    column = f"{daemon} {transport}" if transport != "-" else daemon
    if column not in columns:
        columns.append(column)
    if name not in rows:
        rows.append(name)
    values[(name, column)] = value

ratio = "nodekitd tcp" in columns and "buildkitd tcp" in columns
header = ["measurement (ms, idle RSS in MB)"] + columns + (["ratio over tcp"] if ratio else [])
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for name in rows:
    cells = [values.get((name, c), "") for c in columns]
    if ratio:
        ours = values.get((name, "nodekitd tcp")) or values.get((name, "nodekitd"))
        theirs = values.get((name, "buildkitd tcp")) or values.get((name, "buildkitd"))
        cells.append(f"{float(ours) / float(theirs):.2f}" if ours and theirs and float(theirs) else "")
    print(f"| {name} | " + " | ".join(cells) + " |")
