"""Simulators that produce data: ``robot`` (MuJoCo tabletop; import ``worldmodels.envs.robot``).

Kept import-free so that importing ``worldmodels.envs`` never loads MuJoCo.
"""
