// Vite build of the Grafana-frontend test app (see README.md).
// Assets are served by the stand-in under /public/build/, like Grafana's own bundle.
import { cpSync } from 'node:fs';
import { defineConfig } from 'vite';

// Grafana's Icon component loads its SVGs from /public/build/img/icons/.
const copyIcons = {
  name: 'grender-copy-grafana-icons',
  writeBundle() {
    cpSync('node_modules/@grafana/ui/dist/public/img/icons', 'dist/img/icons', { recursive: true });
  },
};

export default defineConfig({
  base: '/public/build/',
  plugins: [copyIcons],
  esbuild: { jsx: 'automatic' },
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: 'dist',
    assetsDir: '',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 10000,
    reportCompressedSize: false,
    rollupOptions: {
      // Grafana's plugin-compat layer feature-detects exports that some versions lack.
      shimMissingExports: true,
      output: {
        entryFileNames: '[name]-[hash].js',
        chunkFileNames: '[name]-[hash].js',
        assetFileNames: '[name]-[hash][extname]',
      },
    },
  },
});
