"""Print the README's "Set up" commands, one per line, exactly as written (comments stripped).

.ci/run runs them in a fresh venv: a new user's path is a CI leg, not a claim.
"""

import re
import sys

text = open(sys.argv[1] if len(sys.argv) > 1 else "README.md", encoding="utf-8").read()
found = re.search(r"^#+\s*Set.?up.*?```(?:bash|sh|console)?\n(.*?)```", text, re.S | re.M | re.I)
if not found:
    sys.exit("README.md has no 'Set up' section with a fenced block")
for line in found.group(1).splitlines():
    line = re.sub(r"\s+#.*$", "", line).strip()
    line = line[2:] if line.startswith("$ ") else line
    if line and not line.startswith("#"):
        print(line)
