# The compiled module's interface (vggeo/lm/_walk.pyx).
from collections.abc import Sequence

from lxml import etree

_Name = tuple[str | None, str]
_Step = tuple[int, str | None, str]

class Program:
    def __init__(
        self,
        *,
        chain: Sequence[_Name],
        variables: Sequence[Sequence[_Step]],
        columns: Sequence[Sequence[_Step]],
        flags: Sequence[tuple[int, Sequence[_Step]]],
        refs: tuple[Sequence[_Step], Sequence[_Name]] | None,
        decisions: Sequence[_Name] | None,
        decision_columns: Sequence[Sequence[_Name]],
        geometry: int | None,
        gml: tuple[str, str],
        separators: tuple[str, str, str, str],
        empty: bytes,
    ) -> None: ...
    def run(self, root: etree._Element) -> bytes | None: ...
