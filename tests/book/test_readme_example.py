"""The README's "Using the losses in your own loop" example runs as printed.

The code block is read from README.md and executed in a fresh interpreter, so the
README cannot drift from the API (a torchvision ResNet-18 teacher into a small CNN).
"""
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def example() -> str:
    text = README.read_text()
    section = text.split("### Using the losses in your own loop", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_loss_example_runs_and_trains():
    code = example()
    assert "torchvision.models.resnet18" in code and "Objective(" in code
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=README.parent)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["step 0", "step 1", "step 2"], done.stdout
    assert all(" ce " in line and " act " in line and " jac " in line for line in lines)
    losses = [float(re.search(r"loss (\S+)", line).group(1)) for line in lines]
    assert losses[-1] < losses[0], losses  # three Adam steps on one batch lower its loss
