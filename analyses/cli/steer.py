"""`superscope steer RUN --latent F [F ...] --alpha A --prompt TEXT`: steer latents of a run's SAE and
write each result to RUN/steering/<name>.json + .html (both continuations, KL and ΔCE on held-out
contexts, the latent's own shift, the dose-response figure). Several latents: one result each (batch
mode, for reports), or one edit list with --together. Options come from ``SteerConfig``."""

from __future__ import annotations

import argparse

from superscope.analyses.cli.options import add_command, from_args


def _cmd_steer(args: argparse.Namespace) -> None:
    from superscope.interventions.run_folder import SteerConfig, iter_steer_run, write_result

    config = from_args(SteerConfig, args)
    for result in iter_steer_run(args.run, config):
        json_path, html_path = write_result(args.run, result)
        g, c = result.generation, result.cost
        print(f"{result.config['name']}: KL {c.kl:.4g} nats, ΔCE {c.ce_delta:+.4g} on {c.n_tokens} held-out tokens")
        print(f"  unsteered: {g.clean!r}\n  steered:   {g.steered!r}")
        print(f"  → {json_path}, {html_path}", flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    from superscope.interventions.run_folder import SteerConfig

    parser = add_command(subparsers, "steer", "steer SAE latents of a run: continuations, KL/CE cost, dose-response",
                         _cmd_steer, SteerConfig)
    parser.add_argument("run", help="run folder, e.g. runs/default")
