"""Print one 'N passed, N failed, N skipped' line over the junit reports of all tox envs."""

import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        tests = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        passed += tests - bad - skip
        failed += bad
        skipped += skip
    print(f"  {path}: {root.find('testsuite').get('tests')} tests")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
