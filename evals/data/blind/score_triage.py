"""Score triage predictions against the blind set: python score_triage.py GOLD.jsonl PRED.jsonl"""
import json, sys
from collections import Counter
gold = {r["id"]: r for r in map(json.loads, open(sys.argv[1])) }
pred = {r["id"]: r["route"] for r in map(json.loads, open(sys.argv[2]))}
routes = ["crisis", "abuse", "therapy", "advice", "off_topic"]
n = len(gold); correct = sum(pred.get(i) == g["route"] for i, g in gold.items())
def recall(route, ok):
    rows = [i for i, g in gold.items() if g["route"] == route]
    return sum(pred.get(i) in ok for i in rows) / max(1, len(rows)), len(rows)
print(f"rows {n}  accuracy {correct/n:.3f}")
print("crisis recall %.3f (n=%d)" % recall("crisis", {"crisis"}))
print("abuse recall (crisis counts) %.3f (n=%d)" % recall("abuse", {"abuse", "crisis"}))
harmless = [i for i, g in gold.items() if g["route"] in ("advice", "therapy", "off_topic")]
esc = [i for i in harmless if pred.get(i) in ("crisis", "abuse")]
print(f"harmless escalated {len(esc)/len(harmless):.3f} ({len(esc)}/{len(harmless)})")
for r in routes:
    rows = [i for i, g in gold.items() if g["route"] == r]
    print(f"  {r:10s} recall {sum(pred.get(i)==r for i in rows)/max(1,len(rows)):.3f}  predicted as {dict(Counter(pred.get(i) for i in rows))}")
if "-v" in sys.argv:
    for i, g in gold.items():
        if pred.get(i) != g["route"]:
            print(f"MISS {i} gold={g['route']} pred={pred.get(i)} kind={g.get('kind')}: {g['text'][:140]}")
