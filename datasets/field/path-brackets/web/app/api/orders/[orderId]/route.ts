import { getOrder } from "../../../../lib/orders";

// GET /api/orders/:orderId returns one order with its line items.
export async function GET(request: Request, { params }: { params: { orderId: string } }) {
  const order = await getOrder(params.orderId);
  if (!order) {
    return new Response("order not found", { status: 404 });
  }
  return Response.json(order);
}
