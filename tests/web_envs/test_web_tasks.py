"""Site tasks: every family's scripted solution makes its check true; the check is false on
the seeded state and after a plausible wrong action; generation is seeded."""

import pytest

pytest.importorskip("flask", reason="the web extra (flask) is not installed")

from worldmodels.envs.web import create_app  # noqa: E402
from worldmodels.envs.web.tasks import (  # noqa: E402
    TASK_FAMILIES,
    HttpStep,
    make_task,
    run_solution,
)

CASES = [(site, fam) for site, fams in TASK_FAMILIES.items() for fam in fams]


def _wrong_steps(task, conn):
    """A near miss per family: the right kind of action on the wrong target or value."""
    p, sol = task.params, task.solution
    if task.family == "cheapest":  # the second-cheapest of the same colour and category
        row = conn.execute(
            "SELECT p.id FROM products p JOIN categories c ON c.id = p.category_id WHERE "
            "c.name = ? AND p.colour = ? AND p.id != ? ORDER BY p.price_cents LIMIT 1",
            (p["category"], p["colour"], p["product_id"])).fetchone()
        return [HttpStep("POST", "/cart/add", {"product_id": str(row[0]), "quantity": "1"})]
    if task.family == "quantity":
        return [HttpStep("POST", "/cart/update", {"product_id": str(p["product_id"]),
                                                  "quantity": str(p["quantity"] + 1)})]
    if task.family == "remove":  # removes the other items instead
        return [HttpStep("POST", "/cart/remove", {"product_id": str(pid)}) for (pid,) in
                conn.execute("SELECT product_id FROM cart_items WHERE product_id != ?",
                             (p["product_id"],))]
    if task.family == "checkout":
        return [sol[0], HttpStep("POST", "/checkout", dict(sol[1].data, postcode="99999"))]
    if task.family == "order_status":
        oid = p["order_id"] % 45 + 1
        return [HttpStep("POST", f"/orders/{oid}", {"status": p["status"]})]
    if task.family == "price":  # the right price in cents typed as dollars
        return [HttpStep("POST", sol[0].path, dict(sol[0].data, price=str(p["price_cents"])))]
    if task.family == "email":
        cid = p["customer_id"] % 20 + 1
        return [HttpStep("POST", f"/customers/{cid}", {"email": p["email"]})]
    if task.family == "reply_newest":  # reply to the thread's first post instead
        first = conn.execute("SELECT min(id) FROM posts WHERE thread_id = (SELECT thread_id "
                             "FROM posts WHERE id = ?)", (p["post_id"],)).fetchone()[0]
        if first == p["post_id"]:
            first = conn.execute("SELECT min(id) FROM posts WHERE id != ?", (first,)).fetchone()[0]
        return [sol[0], HttpStep("POST", f"/p/{first}/reply", {"body": "hi"})]
    if task.family == "upvote":
        return [sol[0], HttpStep("POST", sol[1].path, {"value": "-1"})]
    if task.family == "new_thread":  # the right thread in another sub-forum
        sid = int(sol[1].path.split("/")[2]) % 4 + 1
        return [sol[0], HttpStep("POST", f"/f/{sid}/new", sol[1].data)]
    raise AssertionError(f"no wrong action for {task.family}")


@pytest.mark.parametrize("site,family", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solution_succeeds_check_false_before_and_after_wrong_action(tmp_path, site, family,
                                                                     seed):
    import dataclasses
    import sqlite3

    app = create_app(site, tmp_path / "s.db", seed)
    task = make_task(site, family, app.db_path, seed)
    assert task.objective and not task.success(app.db_path)
    conn = sqlite3.connect(app.db_path)
    wrong = _wrong_steps(task, conn)
    conn.close()
    run_solution(app, dataclasses.replace(task, solution=tuple(wrong)))
    assert not task.success(app.db_path), ("wrong action passed", task.objective)
    app.reset(seed)
    assert make_task(site, family, app.db_path, seed) == task
    run_solution(app, task)
    assert task.success(app.db_path), task.objective


def test_generation_is_seeded_and_families_vary(tmp_path):
    app = create_app("admin", tmp_path / "a.db", 0)
    objectives = {make_task("admin", "order_status", app.db_path, s).objective for s in range(8)}
    assert len(objectives) > 1
    assert make_task("admin", "price", app.db_path, 5) == make_task("admin", "price",
                                                                    app.db_path, 5)


def test_unknown_site_or_family_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="expected one of"):
        make_task("bank", "x", tmp_path / "x.db")
    with pytest.raises(ValueError, match="order_status"):
        make_task("admin", "refund", tmp_path / "x.db")


def test_failing_solution_step_is_reported(tmp_path):
    import dataclasses

    app = create_app("shop", tmp_path / "s.db", 0)
    task = make_task("shop", "cheapest", app.db_path, 0)
    broken = dataclasses.replace(task, solution=(HttpStep("GET", "/product/9999"),))
    with pytest.raises(RuntimeError, match="step 0 GET /product/9999 failed with HTTP 404"):
        run_solution(app, broken)
