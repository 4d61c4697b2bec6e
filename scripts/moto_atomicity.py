"""Counts keys that more than one conditional put created at once, on a moto endpoint.

Usage: python3 scripts/moto_atomicity.py http://127.0.0.1:PORT [KEYS] [WRITERS]

WRITERS processes wait at a barrier, then each puts key k with
`attribute_not_exists(pk)`, for each of KEYS keys (defaults 1000 and 4). DynamoDB lets
exactly one win each key. Run it against plain `moto_server` and against
`scripts/moto_server.py`, each with the CPUs kept busy (for example
`for i in 1 2 3 4 5 6; do timeout 120 sh -c 'while :; do :; done' & done`).
"""

import multiprocessing
import sys
import uuid
from collections import Counter

import boto3
import botocore


def client(endpoint):
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def writer(endpoint, table, keys, barrier, results):
    dynamodb = client(endpoint)
    won = []
    for key in range(keys):
        barrier.wait()
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"pk": {"S": f"k{key}"}, "v": {"N": "1"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            won.append(key)
        except botocore.exceptions.ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
    results.put(won)


def main():
    endpoint = sys.argv[1]
    keys = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    writers = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    table = f"atomicity-{uuid.uuid4().hex[:8]}"
    client(endpoint).create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    barrier = multiprocessing.Barrier(writers)
    results = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(target=writer, args=(endpoint, table, keys, barrier, results))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    winners = Counter()
    for _ in processes:
        winners.update(results.get())
    for process in processes:
        process.join()
    more = sum(1 for n in winners.values() if n > 1)
    print(f"{keys} keys, {writers} writers: {more} keys won more than once, {keys - len(winners)} by nobody")


if __name__ == "__main__":
    main()
