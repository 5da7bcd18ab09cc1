// GET /job/{id}/status the way a typical Node.js Lambda would do it: the AWS SDK v3 client
// created at init, a Lambda Runtime API loop, one GetItem per request.
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const client = new DynamoDBClient({});
const table = process.env.ASYNCJOB_TABLE;

async function handle(event) {
  const id = event.rawPath.split("/")[2];
  const { Item } = await client.send(
    new GetItemCommand({ TableName: table, Key: { id: { S: id } }, ConsistentRead: true }),
  );
  if (!Item) {
    return { statusCode: 404, body: JSON.stringify({ resourceType: "OperationOutcome" }) };
  }
  return {
    statusCode: Item.status.S === "completed" ? 200 : 202,
    headers: { "content-type": "application/fhir+json" },
    body: JSON.stringify({ resourceType: "AsyncJob", id, status: Item.status.S }),
  };
}

for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const requestId = next.headers.get("lambda-runtime-aws-request-id");
  const result = await handle(await next.json());
  await fetch(`${api}/invocation/${requestId}/response`, {
    method: "POST",
    body: JSON.stringify(result),
  });
}
