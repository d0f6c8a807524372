"""The MPC engine: MPyC parties per task over authenticated libp2p tunnels."""
