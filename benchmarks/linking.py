"""Benchmark: MeSH linking: lexicon build at MeSH's size, load, cost per mention, its share of the
postprocess stage, and the BC5CDR development-set accuracy of each rule set.

Run: `python -m benchmarks.linking [--descriptors 31000 --scrs 324000] [--out FILE]`.
1. writes synthetic desc/supp XML (.gz, NLM element names; ~4 terms a descriptor, ~1.6 an SCR:
   ~650k terms at the default size) and times `biomine lexicon build` on them in a child process
   (wall, CPU, the child's peak RSS, folder bytes);
2. opens it (memory map) and times lookups of mentions that hit and miss;
3. links the development set's gold mentions with train + Disease Ontology lexicons (accuracy per
   rule set; the dev names never go in) and times a PostprocessStage batch of the dev articles
   (gold answers as RE output, gold mentions as tagger output) with and without `--lexicon`.
Prints one JSON object (also written to --out).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "tests" / "data" / "gold"
OBO = ROOT / "tests" / "data" / "lexicons" / "disease_ontology_mesh.obo"
SYLLABLES = ["ab", "ac", "ad", "al", "am", "an", "ar", "az", "bo", "ce", "chlor", "cy", "de", "di", "do",
             "eth", "fen", "flu", "ga", "hex", "hy", "in", "ka", "lo", "ma", "me", "mo", "na", "ne",
             "ol", "or", "ox", "pa", "phen", "pro", "ra", "ri", "sa", "sul", "ta", "te", "thi", "tri",
             "va", "xy", "zo", "ine", "ide", "ate", "ol", "one", "itis", "osis", "emia", "oma"]


def _name(rng: random.Random) -> str:
    words = [("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 5)))).capitalize()
             for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    return (", ".join(words[:2]) + (" " + " ".join(words[2:]) if words[2:] else "")
            if len(words) > 1 and rng.random() < 0.2 else " ".join(words))


def _terms(rng: random.Random, name: str, n: int) -> str:
    rows = [f'<Term RecordPreferredTermYN="Y"><TermUI>T1</TermUI><String>{name}</String></Term>']
    rows += [f'<Term RecordPreferredTermYN="N"><TermUI>T2</TermUI><String>{_name(rng)}</String></Term>'
             for _ in range(n - 1)]
    return f"<ConceptList><Concept><TermList>{''.join(rows)}</TermList></Concept></ConceptList>"


def synthesize(folder: Path, descriptors: int, scrs: int, seed: int = 7) -> dict[str, int]:
    """desc.xml.gz and supp.xml.gz of the given sizes; returns record and term counts."""
    rng = random.Random(seed)
    trees = ["D02.065", "D03.383", "D12.776", "C04.557", "C10.228", "F03.600", "A01.236", "B01.050", "E02.319"]
    terms = 0
    with gzip.open(folder / "desc.xml.gz", "wt", compresslevel=1) as f:
        f.write('<?xml version="1.0"?>\n<DescriptorRecordSet LanguageCode="eng">\n')
        for i in range(descriptors):
            name, n = _name(rng), rng.choice((1, 2, 3, 4, 5, 6, 7))
            terms += n
            f.write(f'<DescriptorRecord DescriptorClass="1"><DescriptorUI>D{i:06d}</DescriptorUI>'
                    f'<DescriptorName><String>{name}</String></DescriptorName><TreeNumberList>'
                    f'<TreeNumber>{rng.choice(trees)}.{i}</TreeNumber></TreeNumberList>{_terms(rng, name, n)}'
                    f'</DescriptorRecord>\n')
        f.write("</DescriptorRecordSet>\n")
    with gzip.open(folder / "supp.xml.gz", "wt", compresslevel=1) as f:
        f.write('<?xml version="1.0"?>\n<SupplementalRecordSet LanguageCode="eng">\n')
        for i in range(scrs):
            name, n = _name(rng), rng.choice((1, 1, 1, 2, 2, 3))
            terms += n
            f.write(f'<SupplementalRecord SCRClass="{rng.choice("1111113324")}"><SupplementalRecordUI>'
                    f'C{i:09d}</SupplementalRecordUI><SupplementalRecordName><String>{name}</String>'
                    f'</SupplementalRecordName><HeadingMappedToList><HeadingMappedTo><DescriptorReferredTo>'
                    f'<DescriptorUI>*D{rng.randrange(descriptors):06d}</DescriptorUI></DescriptorReferredTo>'
                    f'</HeadingMappedTo></HeadingMappedToList>{_terms(rng, name, n)}</SupplementalRecord>\n')
        f.write("</SupplementalRecordSet>\n")
    return {"descriptors": descriptors, "scrs": scrs, "terms": terms,
            "xml_gz_bytes": sum(p.stat().st_size for p in folder.glob("*.xml.gz"))}


def build_at_scale(folder: Path) -> dict:
    """`biomine lexicon build --mesh desc --mesh supp` in a child process: wall, CPU, peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "lexicon", "build", "--mesh",
                           str(folder / "desc.xml.gz"), "--mesh", str(folder / "supp.xml.gz"),
                           "-o", str(folder / "lex")], capture_output=True, text=True, cwd=ROOT)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    meta = json.loads(done.stdout)
    return {"wall_s": round(wall, 1), "cpu_s": round(after.ru_utime + after.ru_stime
                                                     - before.ru_utime - before.ru_stime, 1),
            "child_peak_rss_mb": round(after.ru_maxrss / 1024, 1),
            "lexicon_bytes": sum(p.stat().st_size for p in (folder / "lex").iterdir()),
            "concepts": meta["concepts"], "keys": meta["keys"], "names": meta["names_by_source"]}


def load_and_lookup(folder: Path, mentions: list[tuple[str, str]]) -> dict:
    """Open (memory map) the big lexicon and time linking real mention texts against it."""
    from pipeline.linking.lexicon import Lexicon
    from pipeline.linking.linker import Linker

    rss0 = _rss_mb()
    started = time.perf_counter()
    lexicon = Lexicon(folder / "lex")
    opened = time.perf_counter() - started
    linker = Linker(lexicon)
    started = time.process_time()
    linked = sum(linker.link(text, type_) is not None for text, type_ in mentions)
    cpu = time.process_time() - started
    return {"open_s": round(opened, 3), "rss_growth_mb": round(_rss_mb() - rss0, 1),
            "mentions": len(mentions), "linked": linked, "cpu_us_per_mention": round(1e6 * cpu / len(mentions), 1)}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def accuracy(work: Path) -> dict:
    """Dev-set mention accuracy per rule set (lexicons from train [+ OBO]; dev names never in)."""
    from pipeline.linking.accuracy import mention_accuracy
    from pipeline.linking.build import build_lexicon
    from pipeline.linking.lexicon import Lexicon
    from pipeline.linking.linker import Linker
    from pipeline.tasks.pubtator import read_pubtator

    train = [("pubtator", str(GOLD / "CDR_TrainingSet.PubTator.txt"))]
    build_lexicon(train, work / "train")
    build_lexicon(train + [("obo", str(OBO))], work / "train_obo")
    plain, full = Lexicon(work / "train"), Lexicon(work / "train_obo")
    docs = read_pubtator(GOLD / "CDR_DevelopmentSet.PubTator.txt")
    sets = {"train, exact + lower case": Linker(plain, variants=False, abbreviations=False, fallback=False),
            "train + OBO, exact + lower case": Linker(full, variants=False, abbreviations=False, fallback=False),
            "+ variants": Linker(full, abbreviations=False, fallback=False),
            "+ abbreviations": Linker(full, fallback=False),
            "+ fallback (salts, adjectives): default": Linker(full)}
    out = {}
    for name, linker in sets.items():
        started = time.process_time()
        out[name] = mention_accuracy(linker, docs)
        out[name]["cpu_s"] = round(time.process_time() - started, 2)
    known = {e.id for _, p in train for e in __import__("pipeline.linking.sources", fromlist=["x"])
             .read_pubtator_names(p)} | {e.id for e in __import__("pipeline.linking.sources", fromlist=["x"])
                                         .read_obo(OBO)}
    ceiling = {}
    for d in docs:
        for m in d.mentions:
            if m.concept_id not in ("-1",) and "|" not in m.concept_id:
                hit, n = ceiling.get(m.type, (0, 0))
                ceiling[m.type] = (hit + (m.concept_id in known), n + 1)
    out["ceiling: gold id anywhere in train + OBO"] = {t: round(h / n, 4) for t, (h, n) in ceiling.items()}
    return out


def postprocess_share(work: Path) -> dict:
    """PostprocessStage over the dev articles (gold answers, gold-mention tagger output), with and
    without the train + OBO lexicon: CPU seconds per article and linking's share."""
    import numpy as np
    import pyarrow as pa

    from pipeline.config import RunConfig
    from pipeline.dataflow.outputs import ERROR_STRUCT
    from pipeline.dataflow.stages import PostprocessStage
    from pipeline.tasks.pubtator import read_pubtator
    from pipeline.tasks.re_bc5cdr import RECIPE
    from pipeline.tasks.relation import render_answer

    docs = read_pubtator(GOLD / "CDR_DevelopmentSet.PubTator.txt")
    base = dict(inputs=["x"], output=str(work / "out"), tasks=["re-bc5cdr", "ner"], demo_model=True,
                progress=False)
    plain = PostprocessStage(RunConfig(**base), "bench")
    linked = PostprocessStage(RunConfig(**base, lexicon=str(work / "train_obo")), "bench")
    task, tok = plain.ner_task.task, plain.re_task.tokenizer
    label = {v: k for k, v in task.id2label.items()}
    rows = []
    for d in docs:
        article = {"pmid": int(d.pmid), "version": 1, "title": d.title, "abstract": d.abstract}
        names = {m.concept_id: m.text.lower() for m in d.mentions}
        pairs = [(names.get(r.id1, r.id1), names.get(r.id2, r.id2), "CID") for r in d.relations]
        windows = []
        for section, text, ids, offsets, ranges in task._layout(article):
            shift = 0 if section == "title" else len(d.title) + 1
            tags = np.full(len(ids), label["O"])
            for m in d.mentions:
                kind = "Chemical" if m.type == "Chemical" else "Disease"
                inside = [t for t, (s, e) in enumerate(offsets) if e > s and s < m.end - shift and e > m.start - shift]
                for j, t in enumerate(inside):
                    tags[t] = label.get(("B-" if j == 0 else "I-") + kind, label["O"])
            for s, e in ranges:
                p = np.zeros((e - s + 1, len(label)), np.float32)
                p[0, label["O"]] = 1.0
                p[np.arange(1, e - s + 1), tags[s:e]] = 1.0
                windows.append(p.tolist())
        answer = render_answer(RECIPE, pairs) if pairs else None
        rows.append({**article, "re_output": tok.encode(answer, add_special_tokens=False) if answer else None,
                     "ner_probs": windows})
    table = pa.Table.from_pylist([{k: r[k] for k in ("pmid", "version", "title", "abstract")} for r in rows])
    table = table.append_column("re_output", pa.array([r["re_output"] for r in rows], pa.list_(pa.int32())))
    table = table.append_column("ner_probs", pa.array([r["ner_probs"] for r in rows],
                                                      pa.list_(pa.list_(pa.list_(pa.float32())))))
    table = table.append_column("errors", pa.array([[] for _ in rows], pa.list_(ERROR_STRUCT)))
    times: dict[str, list[float]] = {"without": [], "cold": [], "warm": []}
    for _ in range(2):  # cold: the linker's look-up cache emptied first; warm: a second batch
        for name, stage in (("without", plain), ("cold", linked), ("warm", linked)):
            if name == "cold":
                linked.linker._cache.clear()
            started = time.process_time()
            out = stage(table)
            times[name].append(time.process_time() - started)
    best = {k: min(v) for k, v in times.items()}
    ends = sum(out.column("n_entities").to_pylist()) + 2 * sum(out.column("n_relations").to_pylist())
    result = {"articles": table.num_rows, "entity_rows": sum(out.column("n_entities").to_pylist()),
              "relation_rows": sum(out.column("n_relations").to_pylist()), "mentions_linked_per_batch": ends,
              "cpu_s_without_lexicon": round(best["without"], 3)}
    for name in ("cold", "warm"):
        extra = best[name] - best["without"]
        result[f"cpu_s_with_lexicon_{name}"] = round(best[name], 3)
        result[f"linking_share_of_stage_{name}"] = round(extra / best[name], 4)
        result[f"linking_cpu_us_per_mention_{name}"] = round(1e6 * extra / ends, 1)
    return result


INDEXING_NAMES = ("Humans", "Male", "Female", "Animals", "Rats", "Rats, Sprague-Dawley", "Adult", "Middle Aged",
                  "Aged", "Mice", "Dose-Response Relationship, Drug", "Time Factors", "Kidney", "Cisplatin",
                  "Antineoplastic Agents", "Retrospective Studies", "Treatment Outcome", "Risk Factors", "Child",
                  "Adolescent")


def indexing_cost() -> dict:
    """Link the dev mentions with the bundled lexicon, each article carrying 15 MeSH indexing names
    (as real PubMed articles do; the names repeat across articles): CPU per mention, cold and warm."""
    import random

    from pipeline.linking.lexicon import Lexicon
    from pipeline.linking.linker import ArticleContext, Linker
    from pipeline.tasks.pubtator import read_pubtator

    docs = read_pubtator(GOLD / "CDR_DevelopmentSet.PubTator.txt")
    rng = random.Random(0)
    articles = [(d, {f"D{rng.randrange(10**6):06d}": (n, "") for n in rng.sample(INDEXING_NAMES, 15)})
                for d in docs]
    linker = Linker(Lexicon("bundled:cdr-do"))
    out = {}
    for name in ("cold", "warm"):
        started, n = time.process_time(), 0
        for doc, indexing in articles:
            context = ArticleContext.of(doc.title, doc.abstract, indexing)
            for m in doc.mentions:
                linker.link(m.text, m.type, context)
                n += 1
        out[f"cpu_us_per_mention_{name}"] = round(1e6 * (time.process_time() - started) / n, 1)
    return {"mentions": n, "indexing_names_per_article": 15, **out}


def main() -> None:
    """Run every part, print (and write) the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--descriptors", type=int, default=31_000)
    parser.add_argument("--scrs", type=int, default=324_000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--part", choices=["all", "indexing"], default="all",
                        help="indexing: only the cost with article indexing (seconds, no MeSH build)")
    args = parser.parse_args()
    if args.part == "indexing":
        result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                              "load_avg_start": os.getloadavg()}, "with_indexing": indexing_cost()}
        result["machine"]["load_avg_end"] = os.getloadavg()
        text = json.dumps(result, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return
    from pipeline.tasks.pubtator import read_pubtator

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                              "load_avg_start": os.getloadavg()},
                  "accuracy_dev": accuracy(work), "postprocess": postprocess_share(work)}
        mentions = [(m.text, m.type) for d in read_pubtator(GOLD / "CDR_DevelopmentSet.PubTator.txt")
                    for m in d.mentions]
        started = time.time()
        result["synthetic_mesh"] = synthesize(work, args.descriptors, args.scrs)
        result["synthetic_mesh"]["write_s"] = round(time.time() - started, 1)
        result["build"] = build_at_scale(work)
        result["lookup_at_scale"] = load_and_lookup(work, mentions)
        result["with_indexing"] = indexing_cost()
        result["machine"]["load_avg_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
