import { formatPrice } from "../../../lib/format";

// The shopping cart page lists items and the order total.
export default function CartPage({ items }: { items: { name: string; cents: number }[] }) {
  const total = items.reduce((sum, item) => sum + item.cents, 0);
  return (
    <main>
      <h1>Your cart</h1>
      <p>Total: {formatPrice(total)}</p>
    </main>
  );
}
