docker build nope
