// Checkout: the middle of the stack.
import { priceOf } from "./pricing.js";

export function checkout(cart) {
  let total = 0;
  for (const item of cart.items) {
    total += applyQuantity(item);
  }
  return total;
}

function applyQuantity(item) {
  return priceOf(item.sku) * item.quantity;
}
