// Checkout: the middle of the stack.
const { priceOf } = require("./pricing");

function checkout(cart) {
  let total = 0;
  for (const item of cart.items) {
    total += applyQuantity(item);
  }
  return total;
}

function applyQuantity(item) {
  return priceOf(item.sku) * item.quantity;
}

module.exports = { checkout };
