"""SpamAssassin's score for an issue as a subscriber would receive it (local rules only).

Run: python bench/spam_score.py [ISSUE]   (needs Debian's `spamassassin`; 5.0 counts as spam)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.lists.reader import sample_subscriber
from gigo_mail.send.message import MessageFactory

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    if shutil.which("spamassassin") is None:
        print("spamassassin is not installed: apt-get install spamassassin", file=sys.stderr)
        return 1
    config = load_config(REPO)
    compiled = compile_issue(config, find_issue(config.root, sys.argv[1] if len(sys.argv) > 1 else "011"))
    factory = MessageFactory(compiled, secret=b"bench")
    message = factory.build(sample_subscriber("ana@example.org", "Ana Souza"))
    report = subprocess.run(["spamassassin", "-L", "-t"], input=message.data, capture_output=True, check=True)
    text = report.stdout.decode("utf-8", "replace")
    print(text[text.find("Content analysis details"):].strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
