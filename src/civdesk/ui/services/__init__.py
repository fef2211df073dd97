"""The window's services: plain QObjects that own work and state, with views as listeners."""
