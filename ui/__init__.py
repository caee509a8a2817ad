"""Qt front end of RNN Explorer: the window, its panels and dialogs."""
