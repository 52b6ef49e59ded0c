// esbuild bundles imported CSS into weightwidget/static/widget.css.
declare module "*.css";
