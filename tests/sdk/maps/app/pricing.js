// Pricing: where the error starts.
const PRICES = { "splat-0": 10 };

function priceOf(sku) {
  const price = PRICES[sku];
  if (price === undefined) {
    throw new Error(`no price for ${sku}`);
  }
  return price;
}

module.exports = { priceOf };
