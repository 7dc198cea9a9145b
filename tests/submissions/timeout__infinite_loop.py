"""expect: timeout -- softmax never returns."""
def softmax(x, dim=-1):
    while True:
        pass
