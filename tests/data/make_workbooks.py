"""Write the shared test models (tests/engine/models.py) and the worked examples of the README's
"Modelling" section (tests/engine/examples.py) as .xlsx files in tests/data/workbooks/.

They are fixtures for trying the engine by hand (``alea run tests/data/workbooks/small.xlsx``)
and for other parts' tests that want a file rather than a builder. Run from the repository root:

    .venv/bin/python tests/data/make_workbooks.py
"""

from __future__ import annotations

from pathlib import Path

from tests.engine import examples, models

OUT = Path(__file__).with_name("workbooks")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in models.MODELS.items():
        print(models.save(build("risk"), OUT, name))
    for name, example in examples.EXAMPLES.items():
        print(models.save(example(), OUT, name))


if __name__ == "__main__":
    main()
