"""Synthetic `wm data build web` episode records for the web policy / value tests (not a test module).

Three episodes on a toy shop, with the builder's episode fields:

- episode 0, scripted (noise 0.2), 4 steps, the check holds after step 2 (and 3, the stop):
  value labels (gamma 0.8) 0.64, 0.8, 1, 1 -> digits 6, 7, 9, 9;
- episode 1, random, 3 steps, never succeeds: labels 0, 0, 0;
- episode 0 of another family, scripted, 2 steps, fails: labels 0, 0.
"""

HOME = ("Tab 0 (current): Shop\n\n[1] RootWebArea 'Shop' focused: True\n\t[4] link 'Hats'\n\t[5] link 'Mugs'\n"
        "\t[6] searchbox 'Search'\n\t[7] StaticText 'Welcome to the shop'")
HATS = ("Tab 0 (current): Hats\n\n[1] RootWebArea 'Hats' focused: True\n\t[8] link 'Green hat $5'\n"
        "\t[9] button 'Add green hat'\n\t[10] link 'Red hat $7'\n\t[11] button 'Add red hat'")
CART = "Tab 0 (current): Cart\n\n[1] RootWebArea 'Cart' focused: True\n\t[12] StaticText 'Green hat in cart'"
OBJECTIVE = "Add the cheapest green hat to the cart."


def rec(step, obs, action, nxt, *, episode=0, agent="scripted", success=False, episode_success=True,
        episode_steps=4, family="cheapest", prev=None, noise=0.2, url="http://localhost:shop/") -> dict:
    return {"objective": OBJECTIVE, "url": url, "previous_actions": prev or [], "observation": obs,
            "current_action": action, "next_state_acctree": nxt, "site": "shop", "family": family,
            "episode": episode, "step": step, "agent": agent, "noise": noise, "success": success,
            "episode_success": episode_success, "episode_steps": episode_steps, "seed": 7,
            "new_items": "None", "deleted_items": "None", "updated_items": "None"}


def records() -> list[dict]:
    """The 9 records above, in file order."""
    return [
        rec(0, HOME, "click [4]", HATS),
        rec(1, HATS, "scroll [down]", HATS, prev=["click [4]"]),
        rec(2, HATS, "click [9]", CART, success=True, prev=["click [4]", "scroll [down]"]),
        rec(3, CART, "stop []", CART, success=True, prev=["click [4]", "scroll [down]", "click [9]"]),
        rec(0, HOME, "click [5]", HOME, episode=1, agent="random", episode_success=False, episode_steps=3, noise=0.0),
        rec(1, HOME, "type [6] [mug] [1]", HOME, episode=1, agent="random", episode_success=False,
            episode_steps=3, noise=0.0, prev=["click [5]"]),
        rec(2, HOME, "go_back", HOME, episode=1, agent="random", episode_success=False, episode_steps=3,
            noise=0.0, prev=["click [5]", "type [6] [mug] [1]"]),
        rec(0, HOME, "click [5]", HOME, family="mugs", episode_success=False, episode_steps=2),
        rec(1, HOME, "stop []", HOME, family="mugs", episode_success=False, episode_steps=2, prev=["click [5]"]),
    ]


#: the value labels of ``records()`` with gamma 0.8, by hand (module docstring)
LABELS = [0.64, 0.8, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
