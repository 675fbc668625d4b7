"""`hoop demo`: the whole story on embedded defaults, all on loopback, cleaned up after."""
