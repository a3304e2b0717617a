"""Demo controller: prints a greeting, then counts the simulation steps once per second."""

from controller import Robot

robot = Robot()
time_step = int(robot.getBasicTimeStep())
print("Hello from the web-simulation servers demo!")
steps = 0
while robot.step(time_step) != -1:
    steps += 1
    if steps % (1000 // time_step) == 0:
        print(f"{steps} steps")
