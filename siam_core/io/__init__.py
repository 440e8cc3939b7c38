"""Reading frames from videos and image folders."""
