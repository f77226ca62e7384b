"""Consumers of world models: CEM/MPPI planners, the oracle simulator, the state readout,
image policies, and the Real2Sim evaluator with its report.

(Rendering then training in one process is safe: ``worldmodels.envs.robot.RobotEnv`` loads
triton before MuJoCo creates its EGL context; see ``_init_gl`` there.)
"""
