"""The tabletop scene of the robot world: geometry constants and the MJCF string.

Top view (x to the right, y away from the camera; metres; the table spans [-0.3, 0.3]^2)::

        y=+0.30 +-----------------------------------------+
                |                 [ cabinet (grey)  ]     |
        y=+0.14 |                 [ drawer front    ]     |   drawer slides along -y
                |              ___====handle (yellow)     |   (opening 0 .. 0.12 m)
                |                                  o goal |   drawer tasks: green marker
                |   block (red)     goal (green)          |   at the target handle line
                |        pusher (blue, 2-D velocity)      |
        y=-0.30 +-----------------------------------------+

The pusher is a blue cylinder on two slide joints driven by velocity actuators. The drawer
handle is an L-shaped hook: a bar held by one post on its right end, so the pusher can slide
into the gap between bar and drawer front from the left and pull the drawer open, or push on
the bar's outer face to close it. Collision bits: table 1, pusher 2, block 3, drawer 2, so the
pusher floats over the table but touches the block and the drawer.
"""

from __future__ import annotations

TABLE_HALF = 0.30  # table half-size (m)
PUSHER_RADIUS = 0.024
PUSHER_RANGE_X = (-0.27, 0.27)  # slide-joint limits of the pusher
PUSHER_RANGE_Y = (-0.27, 0.12)  # stays below the cabinet front
MAX_SPEED = 0.5  # m/s for |action| = 1
TIMESTEP = 0.01  # physics step (s)
SUBSTEPS = 5  # physics steps per control step (control at 20 Hz)

BLOCK_HALF = 0.025
GOAL_RADIUS = 0.05  # push success: block centre within this distance of the goal centre

CABINET_X = 0.10  # drawer / handle centre line
CABINET_Y = 0.22
DRAWER_FRONT_Y = 0.14  # drawer front face (world y) when closed
DRAWER_MAX_OPEN = 0.12  # slide range (m)
DRAWER_TOL = 0.03  # drawer success: |opening - goal opening| <= this
HANDLE_OFFSET = 0.072  # handle bar centre is this far in front (-y) of the drawer front
HANDLE_HALF_LEN = 0.06
HANDLE_HALF_THICK = 0.008
POST_X = 0.052  # post position relative to the handle centre (right end of the bar)

COLORS = {
    "table": "0.82 0.80 0.75 1",
    "rim": "0.35 0.35 0.38 1",
    "pusher": "0.15 0.35 0.95 1",
    "block": "0.90 0.12 0.12 1",
    "goal": "0.10 0.80 0.20 1",
    "cabinet": "0.45 0.45 0.50 1",
    "drawer": "0.80 0.50 0.20 1",
    "handle": "0.98 0.85 0.10 1",
}


def scene_xml(image_size: int = 64) -> str:
    """MJCF of the scene; the offscreen buffer is sized for ``image_size`` (<= 256)."""
    c = COLORS
    buf = max(256, image_size)
    fy = DRAWER_FRONT_Y
    drawer_half_y = 0.07
    handle_y = -drawer_half_y - HANDLE_OFFSET  # relative to the drawer body centre
    post_len = HANDLE_OFFSET - HANDLE_HALF_THICK
    rim = TABLE_HALF + 0.01
    return f"""
<mujoco model="tabletop">
  <compiler angle="radian"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" gravity="0 0 -9.81"/>
  <visual>
    <global offwidth="{buf}" offheight="{buf}"/>
    <quality shadowsize="0" offsamples="4"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
  </visual>
  <default>
    <geom friction="0.6 0.005 0.0001" solref="0.01 1"/>
  </default>
  <worldbody>
    <light pos="0 -0.2 1.5" dir="0 0.1 -1" diffuse="0.35 0.35 0.35" specular="0 0 0"
           castshadow="false"/>
    <camera name="top" pos="0 -0.17 1.0" xyaxes="1 0 0 0 0.985 0.17" fovy="38"/>
    <geom name="table" type="box" size="{TABLE_HALF + 0.04} {TABLE_HALF + 0.04} 0.01"
          pos="0 0 -0.01" rgba="{c['table']}" contype="1" conaffinity="1"/>
    <geom name="rim_l" type="box" size="0.01 {rim} 0.02" pos="{-rim} 0 0.02" rgba="{c['rim']}"
          contype="1" conaffinity="1"/>
    <geom name="rim_r" type="box" size="0.01 {rim} 0.02" pos="{rim} 0 0.02" rgba="{c['rim']}"
          contype="1" conaffinity="1"/>
    <geom name="rim_b" type="box" size="{rim} 0.01 0.02" pos="0 {-rim} 0.02" rgba="{c['rim']}"
          contype="1" conaffinity="1"/>
    <geom name="rim_t" type="box" size="{rim} 0.01 0.02" pos="0 {rim} 0.02" rgba="{c['rim']}"
          contype="1" conaffinity="1"/>
    <body name="goal" mocap="true" pos="0 0 0.001">
      <geom name="goal" type="cylinder" size="{GOAL_RADIUS} 0.001" rgba="{c['goal']}"
            contype="0" conaffinity="0"/>
    </body>
    <geom name="cabinet" type="box" size="0.10 0.08 0.045" pos="{CABINET_X} {CABINET_Y} 0.045"
          rgba="{c['cabinet']}" contype="0" conaffinity="0"/>
    <body name="drawer" pos="{CABINET_X} {fy + drawer_half_y} 0.03">
      <joint name="drawer" type="slide" axis="0 -1 0" range="0 {DRAWER_MAX_OPEN}"
             limited="true" damping="8" armature="0.5"/>
      <geom name="drawer_box" type="box" size="0.085 {drawer_half_y} 0.025" mass="0.5"
            rgba="{c['drawer']}" contype="2" conaffinity="2"/>
      <geom name="handle_bar" type="box" pos="0 {handle_y} 0"
            size="{HANDLE_HALF_LEN} {HANDLE_HALF_THICK} 0.015" mass="0.05"
            rgba="{c['handle']}" contype="2" conaffinity="2"/>
      <geom name="handle_post" type="box" pos="{POST_X} {-drawer_half_y - post_len / 2} 0"
            size="{HANDLE_HALF_THICK} {post_len / 2} 0.015" mass="0.02"
            rgba="{c['handle']}" contype="2" conaffinity="2"/>
    </body>
    <body name="block" pos="0 0 {BLOCK_HALF}">
      <freejoint name="block"/>
      <geom name="block" type="box" size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}" mass="0.2"
            rgba="{c['block']}" contype="3" conaffinity="3"/>
    </body>
    <body name="pusher" pos="0 0 0.033">
      <joint name="px" type="slide" axis="1 0 0" range="{PUSHER_RANGE_X[0]} {PUSHER_RANGE_X[1]}"
             limited="true" damping="1"/>
      <joint name="py" type="slide" axis="0 1 0" range="{PUSHER_RANGE_Y[0]} {PUSHER_RANGE_Y[1]}"
             limited="true" damping="1"/>
      <geom name="pusher" type="cylinder" size="{PUSHER_RADIUS} 0.03" mass="1"
            rgba="{c['pusher']}" contype="2" conaffinity="2" friction="0.1 0.005 0.0001"/>
    </body>
  </worldbody>
  <actuator>
    <velocity name="vx" joint="px" kv="40" ctrlrange="{-MAX_SPEED} {MAX_SPEED}"
              forcerange="-30 30" forcelimited="true"/>
    <velocity name="vy" joint="py" kv="40" ctrlrange="{-MAX_SPEED} {MAX_SPEED}"
              forcerange="-30 30" forcelimited="true"/>
  </actuator>
</mujoco>
"""
