"""Command line of Ops/align-sim (see Ops/align_sim/README.md)."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TINY = {"items": 60, "users": 60, "topics": 4, "seq_min": 8, "seq_max": 16}


def main(argv):
    parser = argparse.ArgumentParser(prog="Ops/align-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="simulate a world and write its media and signals into DIR")
    g.add_argument("dir")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--items", type=int, default=800)
    g.add_argument("--users", type=int, default=1200)
    g.add_argument("--topics", type=int, default=12)
    g.add_argument("--seq-min", type=int, default=15)
    g.add_argument("--seq-max", type=int, default=40)
    g.add_argument("--jobs", type=int, default=2, help="ffmpeg processes at once")
    g.add_argument("--tiny", action="store_true",
                   help="the CI size: 60 items, 60 users, 4 topics (explicit size flags are ignored)")
    g.add_argument("--no-media", action="store_true", help="signals only (events still name the media files)")

    e = sub.add_parser("embed", help="embed DIR's items with ember into DIR/embeddings.jsonl")
    e.add_argument("dir")
    e.add_argument("--ember", help="the ember binary (default $EMBER_BINARY, then the repo's release build)")
    e.add_argument("--brokers", help="a running broker to use (default: start tansu on --port)")
    e.add_argument("--port", type=int, default=19230)
    e.add_argument("--via", choices=["replay", "embed"], default="replay")
    e.add_argument("--jobs", type=int, default=2, help="ember embed processes at once (--via embed)")

    v = sub.add_parser("evaluate-raw", aliases=["evaluate"],
                       help="recall@50 of the raw fused vectors (or --embeddings records), with oracle figures")
    v.add_argument("dir")
    v.add_argument("--embeddings", help="records to evaluate (default DIR/embeddings.jsonl)")
    v.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    v.add_argument("--k", type=int, default=50, help="recall@k (the tiny world has 48 warm items: use 10)")

    c = sub.add_parser("check", help="validate DIR's files: shapes, split disjointness, references")
    c.add_argument("dir")

    args = parser.parse_args(argv)
    if args.command == "generate":
        import generate
        sizes = TINY if args.tiny else {"items": args.items, "users": args.users, "topics": args.topics,
                                         "seq_min": args.seq_min, "seq_max": args.seq_max}
        generate.generate(args.dir, args.seed, sizes["items"], sizes["users"], sizes["topics"],
                          sizes["seq_min"], sizes["seq_max"], args.jobs, render_media=not args.no_media)
    elif args.command == "embed":
        import embed
        embed.embed(args.dir, args.ember, args.brokers, args.port, args.via, args.jobs)
    elif args.command in ("evaluate-raw", "evaluate"):
        import evaluate
        evaluate.main(args.dir, args.embeddings, args.json, args.k)
    elif args.command == "check":
        import check
        problems = check.check(args.dir)
        for p in problems[:20]:
            print(f"align-sim check: {p}", file=sys.stderr)
        if len(problems) > 20:
            print(f"align-sim check: … and {len(problems) - 20} more problems", file=sys.stderr)
        if problems:
            return 1
        print(f"align-sim check: {args.dir} is consistent", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
