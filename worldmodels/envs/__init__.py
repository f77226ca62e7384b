"""Simulators that produce data: ``robot`` (MuJoCo tabletop; import ``worldmodels.envs.robot``)
and ``text_game`` (a small text-game engine writing GPT-simulator records; ``text_game_data``).

Kept import-free so that importing ``worldmodels.envs`` never loads MuJoCo.
"""
