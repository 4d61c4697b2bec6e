"""moto's server as DynamoDB behaves: each request to DynamoDB is atomic.

Usage (as moto_server): python3 scripts/moto_server.py -H 127.0.0.1 -p PORT

moto checks a write's condition and then stores the item in two steps, on a thread per
request, so under CPU load two concurrent `attribute_not_exists(pk)` puts of one key
can both succeed (moto 5.2.5: 1 to 7 of 1,000 contested keys on a loaded 2-CPU
machine; scripts/moto_atomicity.py counts them). DynamoDB decides a conditional write
atomically, and trailwatch's alert claims and stateful windows rely on that. This runs
moto's own server with one lock around every DynamoDB request; other services stay
concurrent.
"""

import threading

import moto.server

_Dispatcher = moto.server.DomainDispatcherApplication
_dynamodb = threading.Lock()


class DynamoDBAtomicDispatcher(_Dispatcher):
    """moto's dispatcher, one DynamoDB request at a time."""

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb:
                return super().__call__(environ, start_response)
        return super().__call__(environ, start_response)


moto.server.DomainDispatcherApplication = DynamoDBAtomicDispatcher

if __name__ == "__main__":
    moto.server.main()
