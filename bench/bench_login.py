"""Login benchmark: does the time of a refused login tell a wrong password, an unknown user name
and a user who waits after too many failures apart? (It must not: issue 22.)

    python bench/bench_login.py                    # prints the table
    python bench/bench_login.py --write-results    # also updates its section of RESULTS.md
    python bench/bench_login.py --quick            # smoke run, a few seconds

In one process, on a fresh SQLite home, `engine.services.accounts.authenticate` (what the
/auth/login route calls) is timed for the three refusals, interleaved in a shuffled order each
round so that load on the machine falls on all three alike. Each attempt comes from its own
address (so no address reaches its own limit), the wrong-password user's failures are forgiven
between rounds (untimed, so it never starts to wait), and the waiting user has had
SEEDLAB_LOGIN_USER_MAX_FAILURES failures from as many addresses. The baseline is the wrong
password; a Mann-Whitney U test says whether another case's times differ from it. The address
limit's own refusal is timed too: it is fast on purpose (no password hash for a flooding
address) and says nothing about any user.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEGIN, END = "<!-- bench_login:begin -->", "<!-- bench_login:end -->"
PASSWORD = "correct horse battery"
CASES = ("wrong password", "unknown user", "user waiting")


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def run(rounds: int) -> tuple[dict[str, list[float]], set[str], list[float]]:
    from db.migrate import upgrade_to_head
    from db.session import get_db
    from db.writes import users as user_writes
    from engine.core.settings import Settings
    from engine.services import accounts
    from engine.services.permissions import cli_actor

    settings = Settings.from_env()
    db = get_db(settings)
    upgrade_to_head(db)
    accounts.add_user(db, cli_actor(), "ana", PASSWORD, "member")
    accounts.add_user(db, cli_actor(), "lou", PASSWORD, "member")
    for i in range(settings.login_user_max_failures):
        try:
            accounts.authenticate(db, "lou", "a wrong guess", address=f"198.51.100.{i}")
        except accounts.LoginError:
            pass
    assert accounts.locked_until(db, "lou") is not None

    attempts = {
        "wrong password": ("ana", "a wrong guess"),
        "unknown user": ("nobody", PASSWORD),
        "user waiting": ("lou", PASSWORD),  # the right password, refused while waiting
    }
    times: dict[str, list[float]] = {case: [] for case in CASES}
    answers: set[str] = set()
    order = list(CASES)
    for r in range(rounds + 1):  # round 0 warms up (connection pool, first hash), not counted
        random.shuffle(order)
        user_writes.clear_login_failures(db, "ana")
        for k, case in enumerate(order):
            name, password = attempts[case]
            start = time.perf_counter()
            try:
                accounts.authenticate(db, name, password, address=f"10.{r // 250}.{r % 250}.{k}")
                raise AssertionError(f"{case}: logged in")
            except accounts.LoginError as exc:
                elapsed = time.perf_counter() - start
                answers.add(str(exc))
            if r:
                times[case].append(elapsed)

    # The address's own limit: a flooding address is refused before any hash.
    address_waits: list[float] = []
    for i in range(settings.login_max_failures + max(5, rounds // 2)):
        start = time.perf_counter()
        try:
            accounts.authenticate(db, f"guess{i}", "a wrong guess", address="203.0.113.1")
        except accounts.AddressWaits:
            address_waits.append(time.perf_counter() - start)
        except accounts.LoginError:
            pass
    return times, answers, address_waits


def report(times: dict[str, list[float]], answers: set[str], address_waits: list[float]) -> str:
    from scipy.stats import mannwhitneyu

    base = times["wrong password"]
    base_median = statistics.median(base)
    lines = [
        "| refused login | attempts | median | p25–p75 | / wrong password "
        "| Mann-Whitney p vs wrong |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case in CASES:
        low, mid, high = _quantiles(times[case])
        p = "—" if case == "wrong password" else f"{mannwhitneyu(times[case], base).pvalue:.2f}"
        lines.append(
            f"| {case} | {len(times[case])} | {mid * 1000:.0f} ms | "
            f"{low * 1000:.0f}–{high * 1000:.0f} ms | {mid / base_median:.2f}× | {p} |"
        )
    if address_waits:
        mid = statistics.median(address_waits)
        lines.append(
            f"| address waiting (says nothing about a user) | {len(address_waits)} | "
            f"{mid * 1000:.1f} ms | | {mid / base_median:.3f}× | |"
        )
    same = "one and the same sentence" if len(answers) == 1 else f"{len(answers)} DIFFERENT answers"
    return "\n".join(lines) + f"\n\nAnswers of the three refusals: {same}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="attempts per case")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 rounds")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    rounds = 5 if args.quick else args.rounds
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-login-") as home:
        os.environ["SEEDLAB_HOME"] = home
        os.environ.pop("SEEDLAB_DB_URL", None)
        times, answers, address_waits = run(rounds)
    load_after = os.getloadavg()
    table = report(times, answers, address_waits)
    print(table)
    if args.write_results and not args.quick:
        from bench.bench_metrics import RESULTS_PATH, replace_section

        fmt = "/".join
        section = "\n".join(
            [
                BEGIN,
                "## Logins: wrong password, unknown user and waiting user take the same time",
                "",
                f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: "
                f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "- command: `PYTHONPATH=. python bench/bench_login.py --write-results`",
                f"- load average before: {fmt(f'{x:.2f}' for x in load_before)}, "
                f"after: {fmt(f'{x:.2f}' for x in load_after)}",
                "- `accounts.authenticate` in one process, SQLite, argon2id at the library's "
                "defaults; the three cases interleaved in a shuffled order each round, each "
                "attempt from its own address",
                "",
                table,
                "",
                "Each refusal does the same work: one reservation transaction, one argon2 check "
                "(against a dummy hash when the name is unknown or waiting), one write for the "
                "outcome and one audit entry. A p-value well above 0.05 means the times are "
                "not told apart at this sample size.",
                END,
            ]
        )
        replace_section(RESULTS_PATH, BEGIN, END, section)
        print(f"wrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()
