"""How every benchmark ends: print its table (and notes), write its rows as JSON."""

import json
import os
from typing import Dict, Iterable, List, Optional

__all__ = ["emit"]


def emit(rows: List[Dict], table: str, output_json: Optional[str],
         notes: Iterable[str] = ()) -> None:
    """Prints `table` and `notes`; writes `rows` to `output_json` when given."""
    print(table)
    for line in notes:
        print(line)
    if output_json:
        os.makedirs(os.path.dirname(os.path.abspath(output_json)), exist_ok=True)
        with open(output_json, "w") as f:
            json.dump(rows, f, indent=1)
        print(f"wrote {output_json}")
