"""Superposition: ψ = F_eff / N per layer and architecture, with CIs, and the convergence of F_eff
(probes/superposition_entropy.json)."""

from __future__ import annotations

import streamlit as st

from superscope.analyses.report import probe_sections as P
from superscope.dashboards._ui import chart, guard, run_and_data, table


def page() -> None:
    _, data = run_and_data()
    st.title("Superposition")
    d = data.probes.get("superposition_entropy")
    if d is None:
        st.warning(f"No superposition-entropy result: {data.probe_errors.get('superposition_entropy')}. "
                   "The probes step of `superscope run` writes it.")
        return
    st.caption("F_eff = exp(H) of the distribution of total feature activation mass; ψ = F_eff / N effective "
               "features per neuron (ψ > 1 means superposition). 95 % bootstrap intervals over token blocks.")
    chart(P.psi_figure(d), key="psi")
    table(P.entropy_rows(d), key="superposition_entropy", file_name=f"{data.name}_superposition_entropy.csv")
    chart(P.convergence_figure(d), key="f_eff_convergence")


guard(page)
