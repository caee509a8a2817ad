"""The explorer's dialogs: the gradient check and File ▸ Export."""
