"""The Processing provider `inbetween`: thin, declarative algorithms over model/ and the I/O modules."""
