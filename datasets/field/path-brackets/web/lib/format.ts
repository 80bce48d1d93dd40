// Formats an amount in cents as a price string with two decimals.
export function formatPrice(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
