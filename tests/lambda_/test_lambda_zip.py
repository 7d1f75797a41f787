"""`make lambda-zip`: the deployable holds our two modules and imports with stdlib + boto3 only."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from lambda_helpers import ROOT


def test_lambda_zip_holds_two_top_level_modules_that_import_without_the_repo(tmp_path):
    subprocess.run(["make", "-s", "-C", str(ROOT), "lambda-zip", f"PYTHON={sys.executable}"],
                   check=True, capture_output=True, timeout=60)
    with zipfile.ZipFile(ROOT / "build" / "lambda.zip") as zf:
        assert sorted(zf.namelist()) == ["handler.py", "lambda_events.py"]
        zf.extractall(tmp_path)
    # -I: no cwd, no PYTHONPATH, no user site; only the extracted zip is added.
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import handler; "
             "assert callable(handler.lambda_handler); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('bincounter', 'devtools', 'numpy', 'PIL')))")
    done = subprocess.run([sys.executable, "-I", "-c", probe, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
