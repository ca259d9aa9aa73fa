"""`riskpool optimize` end to end: the plan, its out-of-sample check, the
frontier, and the clear refusal of an infeasible budget."""

from __future__ import annotations

from click.testing import CliRunner

from models.scenario import load_scenario
from sim.cli import cli
from sim.optimizer.allocation import optimize
from sim.optimizer.model import empirical_cvar

SCENARIO = "scenarios/shijiazhuang_score_loan.toml"


def test_pool_is_the_cvar_of_the_plans_pool_claims():
    sc = load_scenario(SCENARIO, ["optimize.options={}", "contract.shares.score_loan.bank=0.2",
                                  "contract.shares.score_loan.pool=0.8",
                                  "contract.shares.score_loan.guarantor=0.0"])
    outcome = optimize(sc, budget=40e6, n_scenarios=300, frontier_points=0, verify_paths=0, stability_sets=0)
    r = outcome.result
    claims = outcome.problem.pool_claims[:, :, 0] @ r.credit_by_option[:, 0]
    assert r.pool_size > 0
    assert abs(r.pool_size - empirical_cvar(claims, outcome.problem.alpha)) <= 1e-6 * r.pool_size


def test_infeasible_budget_is_explained_with_exit_code_2(tmp_path):
    out = tmp_path / "opt"
    result = CliRunner().invoke(cli, ["optimize", SCENARIO, "--budget", "1e5", "--scenarios", "300",
                                      "--verify-paths", "0", "--set", "optimize.min_credit_share=1.0",
                                      "--set", "optimize.frontier_points=0", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert ("budget 1e+05 yuan is below the smallest funding" in result.output
            and "Traceback" not in result.output)
    assert not out.exists()


def test_a_menu_is_required_when_products_share_differently(tmp_path):
    scenario = tmp_path / "two_products.toml"
    scenario.write_text("""
[portfolio.synthetic]
products = { a = 0.5, b = 0.5 }

[products.a]
[products.b]

[contract.shares.a]
bank = 0.2
pool = 0.8

[contract.shares.b]
bank = 0.5
pool = 0.5
""", encoding="utf-8")
    result = CliRunner().invoke(cli, ["optimize", str(scenario), "--budget", "1e7", "--scenarios", "100",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "two_products.toml: optimize.options: products share losses differently" in result.output


def test_a_verification_too_small_to_show_the_tail_limit_is_refused_up_front(tmp_path):
    """At alpha 0.999, 1 000 paths with no event still leave a 95 % upper bound of 0.3 % > 0.1 %: no
    plan could ever be verified, so the request is refused, naming the option and the paths needed
    (log 0.05 / log 0.999 = 2 995)."""
    out = tmp_path / "opt"
    result = CliRunner().invoke(cli, ["optimize", SCENARIO, "--budget", "40e6", "--verify-paths", "1000",
                                      "--set", "optimize.alpha=0.999", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "optimize.verify_paths (--verify-paths) 1,000: too few paths" in result.output
    assert "use at least 2,995" in result.output and "Traceback" not in result.output
    assert not out.exists()
