"""The explorer's panels, one module each; every panel renders the controller's trace."""
