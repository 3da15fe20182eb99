return 421, "4.3.2 Not today"
